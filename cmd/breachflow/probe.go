package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// probeCmd checks that a URL answers 2xx; distroless images have no curl, so container
// health checks use it.
func (a *app) probeCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "probe URL",
		Short:  "Exit 0 when URL answers 2xx (for container health checks)",
		Args:   cobra.ExactArgs(1),
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, args[0], nil)
			if err != nil {
				return err
			}
			resp, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("%s answered %d", args[0], resp.StatusCode)
			}
			return nil
		},
	}
}
