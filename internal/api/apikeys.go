package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/breachflow/breachflow/internal/store"
)

const maxBody = 1 << 20

var errTooLarge = errors.New("request body too large")

// decode reads one JSON object into v, refusing unknown fields, oversized bodies and
// text that is not valid UTF-8.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return bodyError(err)
	}
	// Checked on the raw bytes: decoding would already have made every bad sequence U+FFFD.
	if f := findInvalidUTF8(data); f != nil {
		return &store.FieldError{Field: f.Field, Message: f.Message()}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: body: want one JSON object", store.ErrInvalidInput)
	}
	// PostgreSQL text cannot hold NUL: refused here, it would otherwise fail a write late
	// (a 500, or an activity retried for ever under a workflow's update).
	if field, ok := nulField(reflect.ValueOf(v), ""); ok {
		return &store.FieldError{Field: field, Message: "contains a NUL character"}
	}
	return nil
}

// nulField returns the JSON name of the first string in v holding a NUL character. Raw
// JSON (a notice draft) is left to the validation of what it decodes into.
func nulField(v reflect.Value, path string) (string, bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return nulField(v.Elem(), path)
		}
	case reflect.String:
		return path, strings.ContainsRune(v.String(), 0)
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return "", false
		}
		for i := range v.Len() {
			if f, ok := nulField(v.Index(i), path); ok {
				return f, true
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if f, ok := nulField(it.Value(), path); ok {
				return f, true
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if path != "" {
				name = path + "." + name
			}
			if field, ok := nulField(v.Field(i), name); ok {
				return field, true
			}
		}
	}
	return "", false
}

// bodyError names the field a decoding error is about where JSON tells, and keeps the
// cause in the chain for handlers that know more (a time that does not parse).
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	var ute *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return errTooLarge
	case errors.As(err, &ute) && ute.Field != "":
		return &store.FieldError{Field: ute.Field, Message: "want " + jsonKind(ute.Type) + ", not a JSON " + ute.Value}
	}
	if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
		return &store.FieldError{Field: strings.TrimSuffix(name, `"`), Message: "unknown field"}
	}
	return fmt.Errorf("%w: body: %w", store.ErrInvalidInput, err)
}

func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16,
		reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "another type"
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.Store.ListAPIKeys(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name string `json:"name"`
		Role string `json:"role"`
	}
	if err := decode(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	key, k, err := s.Store.CreateAPIKey(r.Context(), in.Name, in.Role, caller(r).Actor())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"key": key, "api_key": k})
}

func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, Error{Code: "invalid", Message: "id must be a positive integer", Field: "id"})
		return
	}
	if err := s.Store.RevokeAPIKey(r.Context(), id, caller(r).Actor()); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
