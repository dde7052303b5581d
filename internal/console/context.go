package console

import (
	"context"
	"net/http"
)

func contextWith(ctx context.Context, cl caller) context.Context {
	return context.WithValue(ctx, ctxKey{}, cl)
}

func callerOf(r *http.Request) caller {
	cl, _ := r.Context().Value(ctxKey{}).(caller)
	return cl
}
