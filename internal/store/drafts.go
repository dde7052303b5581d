package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// DraftReplaced returns the hash of the draft that hash replaced when it last became the
// incident's current draft, as the audit log's notice.drafted record says ("" for the
// first draft). ok is false when hash never became current.
func (s *Store) DraftReplaced(ctx context.Context, incidentID, hash string) (prev string, ok bool, err error) {
	// The audit log, not notice_drafts, knows the order drafts became current: a draft
	// can be proposed long before it is selected, and an older one selected again.
	err = s.pool.QueryRow(ctx, `SELECT coalesce(detail->>'previous_hash', '') FROM audit_log
		WHERE incident_id = $1 AND action = 'notice.drafted' AND detail->>'content_hash' = $2
		ORDER BY seq DESC LIMIT 1`, incidentID, hash).Scan(&prev)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("draft replaced by %s: %w", hash, err)
	}
	return prev, true, nil
}

// DraftProposedBefore returns the hash of the latest draft of the incident proposed
// before the one with hash ("" when there is none).
func (s *Store) DraftProposedBefore(ctx context.Context, incidentID, hash string) (string, error) {
	var prev string
	err := s.pool.QueryRow(ctx, `SELECT coalesce((SELECT d.content_hash FROM notice_drafts d, notice_drafts cur
		WHERE cur.incident_id = $1 AND cur.content_hash = $2 AND d.incident_id = $1 AND d.content_hash <> $2
		  AND d.created_at <= cur.created_at
		ORDER BY d.created_at DESC, d.content_hash DESC LIMIT 1), '')`, incidentID, hash).Scan(&prev)
	if err != nil {
		return "", fmt.Errorf("draft proposed before %s: %w", hash, err)
	}
	return prev, nil
}
