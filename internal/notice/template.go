package notice

import (
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
)

//go:embed templates
var templateFS embed.FS

// Template part names, used in validation problems and file names.
const (
	// PartSubject names the subject template.
	PartSubject = "subject"
	// PartText names the plain-text body template.
	PartText = "text"
	// PartHTML names the HTML body template.
	PartHTML = "html"
)

// TemplateData is what notice templates execute against; per-recipient values hold
// SendGrid substitution tags. Free text comes from the locale's translation when the
// draft has one, from the English fields otherwise. An element marked not yet known
// holds the locale's "not yet known" sentence in its place (a list holds it as its one
// entry), and NotYetKnown tells templates which elements those are.
type TemplateData struct {
	// Locale is the supported locale code being rendered.
	Locale string
	// PhaseNumber is the notice's number within the incident: 1, 2, …
	PhaseNumber int
	// PhaseKind is PhaseInitial, PhaseUpdate or PhaseFinal.
	PhaseKind string
	// PhaseLabel names the phase in the locale, e.g. "Update 2" (see PhaseLabel).
	PhaseLabel string
	// Reference is Fields.Reference.
	Reference string
	// Title is the incident title.
	Title string
	// AwareAt is Fields.AwareAt formatted for the locale in UTC.
	AwareAt string
	// WhatsNew is what changed since the previous notice; empty for the initial one.
	WhatsNew string
	// Nature is the nature of the breach.
	Nature string
	// DataCategories are the categories of personal data concerned.
	DataCategories []string
	// DataSubjectCategories are the categories of data subjects concerned.
	DataSubjectCategories []string
	// ApproxDataSubjects is Fields.ApproxDataSubjects formatted for the locale.
	ApproxDataSubjects string
	// ApproxRecords is Fields.ApproxRecords formatted for the locale.
	ApproxRecords string
	// Contact is Fields.Contact; {{.Contact}} prints it on one line.
	Contact ContactPoint
	// LikelyConsequences is the likely consequences of the breach.
	LikelyConsequences string
	// MeasuresTaken is the measures taken.
	MeasuresTaken string
	// MeasuresProposed is the measures proposed.
	MeasuresProposed string
	// AdditionalInformation is the additional information, possibly empty.
	AdditionalInformation string
	// NotYetKnown holds true for each element name (from UnknowableElements) marked not
	// yet known, as in {{if index .NotYetKnown "approx_records"}}; it is never nil.
	NotYetKnown map[string]bool
	// Sender is Draft.Sender, trimmed; Signature may span lines.
	Sender Sender
	// TenantName is the recipient tenant's name (a substitution tag).
	TenantName string
	// AckURL is the recipient's acknowledgement link (a substitution tag).
	AckURL string
	// Deadline is the tenant's notification deadline (a substitution tag).
	Deadline string
	// TenantFacts is why the recipient tenant is affected, from FactsBlock (a
	// substitution tag that expands to several lines, or to an HTML list).
	TenantFacts string
}

// templateFuncs are available to every notice template.
var templateFuncs = map[string]any{
	// lines splits multi-line text into its non-blank lines, for paragraphs in HTML.
	"lines": func(s string) []string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
		return out
	},
}

// parsedTemplate is one locale's parsed subject, text and HTML templates.
type parsedTemplate struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// defaultSources holds the embedded template sources per locale.
var defaultSources = loadDefaultSources()

// defaultParsed holds the embedded templates parsed once per locale.
var defaultParsed = parseDefaults()

func loadDefaultSources() map[string]Template {
	out := make(map[string]Template, len(locales))
	for _, loc := range locales {
		read := func(part string) string {
			b, err := templateFS.ReadFile("templates/" + loc + "/" + part + ".tmpl")
			if err != nil {
				panic(fmt.Sprintf("notice: embedded template %s/%s: %v", loc, part, err))
			}
			return string(b)
		}
		out[loc] = Template{Subject: read(PartSubject), Text: read(PartText), HTML: read(PartHTML)}
	}
	return out
}

func parseDefaults() map[string]*parsedTemplate {
	out := make(map[string]*parsedTemplate, len(locales))
	for _, loc := range locales {
		p, problems := parseTemplate(loc, defaultSources[loc])
		if len(problems) > 0 {
			panic(fmt.Sprintf("notice: embedded %s template: %s", loc, problems[0].Message))
		}
		out[loc] = p
	}
	return out
}

// DefaultTemplate returns the embedded template sources for a locale (normalised).
func DefaultTemplate(locale string) Template {
	return defaultSources[NormalizeLocale(locale)]
}

// effectiveSources merges a draft's override for a supported locale over the defaults.
func effectiveSources(d Draft, loc string) Template {
	t := defaultSources[loc]
	o, ok := d.Templates[loc]
	if !ok {
		return t
	}
	if o.Subject != "" {
		t.Subject = o.Subject
	}
	if o.Text != "" {
		t.Text = o.Text
	}
	if o.HTML != "" {
		t.HTML = o.HTML
	}
	return t
}

// parseTemplate parses one locale's sources, reporting each part that fails.
func parseTemplate(loc string, src Template) (*parsedTemplate, []Problem) {
	var problems []Problem
	p := &parsedTemplate{}
	var err error
	if p.subject, err = texttemplate.New(PartSubject).Funcs(templateFuncs).Parse(src.Subject); err != nil {
		problems = append(problems, Problem{Element: ElementTemplates, Locale: loc, Part: PartSubject, Message: err.Error()})
	}
	if p.text, err = texttemplate.New(PartText).Funcs(templateFuncs).Parse(src.Text); err != nil {
		problems = append(problems, Problem{Element: ElementTemplates, Locale: loc, Part: PartText, Message: err.Error()})
	}
	if p.html, err = htmltemplate.New(PartHTML).Funcs(templateFuncs).Parse(src.HTML); err != nil {
		problems = append(problems, Problem{Element: ElementTemplates, Locale: loc, Part: PartHTML, Message: err.Error()})
	}
	return p, problems
}

// parsedFor returns the parsed templates a draft renders with for a supported locale.
func parsedFor(d Draft, loc string) (*parsedTemplate, error) {
	if _, ok := d.Templates[loc]; !ok {
		return defaultParsed[loc], nil
	}
	p, problems := parseTemplate(loc, effectiveSources(d, loc))
	if len(problems) > 0 {
		return nil, &ValidationError{Invalid: problems}
	}
	return p, nil
}

// textTrees returns the parse trees of every template defined in a text template set.
func textTrees(t *texttemplate.Template) []*parse.Tree {
	var out []*parse.Tree
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			out = append(out, tt.Tree)
		}
	}
	return out
}

// htmlTrees returns the parse trees of every template defined in an HTML template set.
func htmlTrees(t *htmltemplate.Template) []*parse.Tree {
	var out []*parse.Tree
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			out = append(out, tt.Tree)
		}
	}
	return out
}

// missingReferences returns, in canonical order, the elements none of the trees refers to.
func missingReferences(trees []*parse.Tree, elements []string) []string {
	seen := map[string]bool{}
	for _, tree := range trees {
		collectFields(tree.Root, seen)
	}
	var missing []string
	for _, el := range elements {
		if !seen[templateFields[el]] {
			missing = append(missing, el)
		}
	}
	return missing
}

// collectFields records the top-level data fields a template node refers to, as in
// {{.Nature}}, {{range .DataCategories}} or {{$.Contact.Email}}.
func collectFields(node parse.Node, seen map[string]bool) {
	switch n := node.(type) {
	case nil:
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			collectFields(c, seen)
		}
	case *parse.ActionNode:
		collectFields(n.Pipe, seen)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			collectFields(c, seen)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			collectFields(a, seen)
		}
	case *parse.FieldNode:
		if len(n.Ident) > 0 {
			seen[n.Ident[0]] = true
		}
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			seen[n.Ident[1]] = true
		}
	case *parse.ChainNode:
		collectFields(n.Node, seen)
	case *parse.IfNode:
		collectBranch(&n.BranchNode, seen)
	case *parse.RangeNode:
		collectBranch(&n.BranchNode, seen)
	case *parse.WithNode:
		collectBranch(&n.BranchNode, seen)
	case *parse.TemplateNode:
		collectFields(n.Pipe, seen)
	}
}

func collectBranch(b *parse.BranchNode, seen map[string]bool) {
	collectFields(b.Pipe, seen)
	collectFields(b.List, seen)
	collectFields(b.ElseList, seen)
}
