package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/breachflow/breachflow/internal/mail/sink"
)

func (a *app) mailsinkCmd() *cobra.Command {
	var listen, webhook string
	var keys []string
	cmd := &cobra.Command{
		Use:   "mailsink",
		Short: "Run a mail sink that speaks SendGrid's v3 Mail Send protocol and posts signed Event Webhooks",
		Long: `Run a mail sink that speaks SendGrid's v3 Mail Send protocol and posts signed Event Webhooks.

The webhook signing key is generated at start unless BREACHFLOW_MAILSINK_PRIVATE_KEY holds a
private key, the base64 of its DER or PEM (make a pair with "breachflow mailsink keygen");
give the receiving API the matching SENDGRID_WEBHOOK_PUBLIC_KEY.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.load(nil); err != nil {
				return err
			}
			if listen == "" {
				listen = a.cfg.MailsinkListen
			}
			s, err := sink.New(sink.Config{APIKeys: keys, WebhookURL: webhook, WebhookPrivateKeyPEM: os.Getenv("BREACHFLOW_MAILSINK_PRIVATE_KEY")}, a.log)
			if err != nil {
				return err
			}
			defer s.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "mail sink on http://%s (mailbox http://%s/sink/)\nevent webhook public key: %s\n", listen, listen, s.PublicKey())
			return a.serveHTTP(cmd.Context(), listen, s.Handler())
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "listen address (default BREACHFLOW_MAILSINK_LISTEN, 127.0.0.1:8025)")
	cmd.Flags().StringVar(&webhook, "webhook-url", "", "where to post signed Event Webhook batches")
	cmd.Flags().StringSliceVar(&keys, "api-key", nil, "accepted API keys (default: any non-empty bearer token)")
	cmd.AddCommand(&cobra.Command{
		Use:   "keygen",
		Short: "Print a webhook signing key pair as environment assignments",
		Long: `Print a webhook signing key pair as environment assignments, for an env file:

  breachflow mailsink keygen >> .env

Both values are base64, one line each and unquoted, so docker compose's .env parser and a
shell's "set -a; source .env" read the same value.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Not PEM: its newlines would need quotes that compose and bash unquote differently.
			priv, pub, err := sink.GenerateKeyBase64()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "BREACHFLOW_MAILSINK_PRIVATE_KEY=%s\nSENDGRID_WEBHOOK_PUBLIC_KEY=%s\n", priv, pub)
			return err
		},
	})
	return cmd
}
