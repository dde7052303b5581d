package api_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// unsecuredRoutes are the routes outside the API's table: probes, the document itself,
// SendGrid's signed webhook and the customers' acknowledgement pages. /metrics is on a
// listener of its own.
var unsecuredRoutes = []string{
	"GET /healthz", "GET /readyz", "GET /v1/openapi.json",
	"POST /v1/webhooks/sendgrid", "GET /ack/{token}", "POST /ack/{token}",
}

// servedPatterns reads the package's source and returns the literal patterns registered on
// the mux, and whether the route table is registered too. A pattern that is neither a
// literal nor the table's fails the test: nobody could tell what it serves.
func servedPatterns(t *testing.T) (literal []string, table bool) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			if fn, ok := n.(*ast.FuncDecl); ok && fn.Recv != nil && fn.Name.Name == "route" {
				return false // the helper every registration goes through
			}
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			var arg ast.Expr
			switch {
			case sel.Sel.Name == "route" && len(call.Args) == 3:
				arg = call.Args[1]
			case (sel.Sel.Name == "Handle" || sel.Sel.Name == "HandleFunc") && len(call.Args) == 2:
				if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "mux" {
					return true
				}
				arg = call.Args[0]
			default:
				return true
			}
			if lit, ok := arg.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				p, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				literal = append(literal, p)
				return true
			}
			if isTablePattern(arg) {
				table = true
				return true
			}
			t.Errorf("%s: the mux gets a pattern the test cannot read; list it in the OpenAPI document and here", fset.Position(arg.Pos()))
			return true
		})
	}
	return literal, table
}

// isTablePattern matches rt.Method + " " + rt.Path, the table's registration.
func isTablePattern(e ast.Expr) bool {
	outer, ok := e.(*ast.BinaryExpr)
	if !ok || outer.Op != token.ADD {
		return false
	}
	inner, ok := outer.X.(*ast.BinaryExpr)
	if !ok || inner.Op != token.ADD {
		return false
	}
	m, ok1 := inner.X.(*ast.SelectorExpr)
	p, ok2 := outer.Y.(*ast.SelectorExpr)
	return ok1 && ok2 && m.Sel.Name == "Method" && p.Sel.Name == "Path"
}

// fromMux reports whether an answer is the mux's own (no route, or no such method).
func fromMux(r reply) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") &&
		(r.Code == http.StatusNotFound && string(r.Body) == "404 page not found\n" ||
			r.Code == http.StatusMethodNotAllowed && string(r.Body) == "Method Not Allowed\n")
}

// TestOpenAPIListsExactlyWhatIsServed: GET /v1/openapi.json documents every route the mux
// serves (the table, with its roles and bearer security, and the routes outside it) and
// nothing more.
func TestOpenAPIListsExactlyWhatIsServed(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{})
	var doc struct {
		OpenAPI    string `json:"openapi"`
		Components struct {
			SecuritySchemes map[string]struct{ Type, Scheme string }
		}
		Paths map[string]map[string]struct {
			Summary     string
			Security    []map[string][]string
			Roles       []string `json:"x-roles"`
			Parameters  []struct{ Name, In string }
			RequestBody *struct {
				Content map[string]struct {
					Schema struct {
						Type       string
						Properties map[string]any
					}
				}
			}
		}
	}
	r := e.must(t, http.StatusOK, "GET", "/v1/openapi.json", keyNone, nil)
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	r.JSON(t, &doc)
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3."))
	require.Equal(t, "http", doc.Components.SecuritySchemes["bearer"].Type)
	require.Equal(t, "bearer", doc.Components.SecuritySchemes["bearer"].Scheme)

	var documented, secured, unsecured []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			name := strings.ToUpper(method) + " " + path
			documented = append(documented, name)
			require.NotEmpty(t, op.Summary, name)
			if len(op.Security) > 0 {
				secured = append(secured, name)
				require.Equal(t, []map[string][]string{{"bearer": {}}}, op.Security, name)
				require.NotEmpty(t, op.Roles, name)
			} else {
				unsecured = append(unsecured, name)
				require.Empty(t, op.Roles, name)
			}
			// Every path parameter is declared, and nothing else is.
			var want, got []string
			for _, seg := range strings.Split(path, "/") {
				if strings.HasPrefix(seg, "{") {
					want = append(want, strings.Trim(seg, "{}"))
				}
			}
			for _, p := range op.Parameters {
				require.Equal(t, "path", p.In, name)
				got = append(got, p.Name)
			}
			require.Equal(t, want, got, name)
			if op.RequestBody != nil {
				require.Contains(t, op.RequestBody.Content, "application/json", name)
			}
			if len(op.Security) > 0 && method == "post" {
				require.NotNil(t, op.RequestBody, "%s takes a JSON body", name)
			}
		}
	}
	require.ElementsMatch(t, unsecuredRoutes, unsecured, "the routes outside the table")
	require.NotEmpty(t, secured)
	// The ledger's routes come from the table like every other: documented, secured, for responders.
	for _, name := range []string{"POST /v1/incidents/{id}/retry", "GET /v1/incidents/{id}/scope/versions",
		"GET /v1/incidents/{id}/scope/diff", "GET /v1/incidents/{id}/tenants"} {
		require.Contains(t, secured, name)
		method, path, _ := strings.Cut(name, " ")
		require.ElementsMatch(t, []string{"responder", "approver"}, doc.Paths[path][strings.ToLower(method)].Roles, name)
	}
	retry := doc.Paths["/v1/incidents/{id}/retry"]["post"].RequestBody.Content["application/json"].Schema
	require.Equal(t, "object", retry.Type)
	require.Empty(t, retry.Properties, "a retry takes an empty object")
	declare := doc.Paths["/v1/incidents"]["post"].RequestBody.Content["application/json"].Schema
	require.Equal(t, "object", declare.Type)
	for _, f := range []string{"title", "summary", "severity", "aware_at", "data_categories", "scope", "partner", "notice"} {
		require.Contains(t, declare.Properties, f, "declaration schema")
	}

	// What the source registers on the mux is what the document lists.
	literal, table := servedPatterns(t)
	require.True(t, table, "the route table is registered")
	require.ElementsMatch(t, unsecuredRoutes, literal, "patterns registered outside the table")

	// Every documented operation is served by a handler, not answered by the mux.
	for _, name := range documented {
		method, path, _ := strings.Cut(name, " ")
		concrete := strings.NewReplacer("{id}", "1", "{token}", strings.Repeat("0", 64)).Replace(path)
		r := e.do(t, method, concrete, keyNone, nil)
		require.False(t, fromMux(r), "%s is documented but not served: %s", name, r)
		if slices.Contains(secured, name) {
			require.Equal(t, http.StatusUnauthorized, r.Code, name)
		}
	}
	// On every documented path, the methods not documented are refused by the mux.
	for path, ops := range doc.Paths {
		concrete := strings.NewReplacer("{id}", "1", "{token}", strings.Repeat("0", 64)).Replace(path)
		for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if _, ok := ops[strings.ToLower(method)]; ok {
				continue
			}
			r := e.do(t, method, concrete, keyAdmin, nil)
			require.Equal(t, http.StatusMethodNotAllowed, r.Code, "%s %s is served but not documented: %s", method, path, r)
			require.True(t, fromMux(r), "%s %s", method, path)
		}
	}
	// And paths nobody documented are not served.
	for _, path := range []string{"/", "/v1/", "/v1/incidents/1/acks", "/v1/partner/reviews/1", "/v1/apikeys/1/rotate",
		"/console/", "/debug/pprof/", "/metrics", "/ack/", "/ack/" + strings.Repeat("0", 64) + "/x", "/v2/incidents"} {
		r := e.do(t, "GET", path, keyAdmin, nil)
		require.Equal(t, http.StatusNotFound, r.Code, "%s: %s", path, r)
		require.True(t, fromMux(r), "%s is served but not documented: %s", path, r)
	}
}
