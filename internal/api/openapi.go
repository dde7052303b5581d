package api

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"github.com/breachflow/breachflow/internal/authz"
)

// OpenAPI builds the OpenAPI 3 document from the route table.
func (s *Server) OpenAPI() map[string]any {
	paths := map[string]any{}
	add := func(method, path, summary string, roles []string, body any, secured bool) {
		item, _ := paths[path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[path] = item
		}
		op := map[string]any{
			"summary":   summary,
			"responses": map[string]any{"200": map[string]any{"description": "OK"}, "4XX": map[string]any{"description": "Error", "content": errorContent}},
		}
		if secured {
			op["security"] = []any{map[string]any{"bearer": []any{}}}
			op["x-roles"] = roles
		}
		var params []any
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, "{") {
				params = append(params, map[string]any{"name": strings.Trim(seg, "{}"), "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
			}
		}
		if params != nil {
			op["parameters"] = params
		}
		if body != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(body))}}}
		}
		item[strings.ToLower(method)] = op
	}
	for _, rt := range s.apiRoutes() {
		add(rt.Method, rt.Path, rt.Summary, authz.RolesFor(rt.Action), rt.Body, true)
	}
	add("GET", "/healthz", "Liveness", nil, nil, false)
	add("GET", "/readyz", "Readiness: PostgreSQL and Temporal answer", nil, nil, false)
	add("GET", "/v1/openapi.json", "This document", nil, nil, false)
	add("POST", "/v1/webhooks/sendgrid", "SendGrid signed Event Webhook", nil, []any{}, false)
	add("GET", "/ack/{token}", "Acknowledgement page (changes nothing)", nil, nil, false)
	add("POST", "/ack/{token}", "Record the acknowledgement", nil, nil, false)
	return map[string]any{
		"openapi": "3.0.3",
		"info":    map[string]any{"title": "breachflow", "version": "1"},
		"paths":   paths,
		"components": map[string]any{"securitySchemes": map[string]any{
			"bearer": map[string]any{"type": "http", "scheme": "bearer"}}},
	}
}

var errorContent = map[string]any{"application/json": map[string]any{"schema": map[string]any{
	"type": "object", "properties": map[string]any{"error": map[string]any{"type": "object", "properties": map[string]any{
		"code": map[string]any{"type": "string"}, "message": map[string]any{"type": "string"}, "field": map[string]any{"type": "string"}}}}}}}

// schemaOf describes a Go type as a JSON schema, following json tags.
func schemaOf(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "object"} // raw JSON
		}
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object"}
	case reflect.Struct:
		if t.String() == "time.Time" {
			return map[string]any{"type": "string", "format": "date-time"}
		}
		props := map[string]any{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			props[name] = schemaOf(f.Type)
		}
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	}
	return map[string]any{}
}

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.OpenAPI())
}

func sprintf(format, v string) string { return fmt.Sprintf(format, v) }
