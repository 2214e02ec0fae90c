package postgres

import "context"

// SessionSetting returns a run-time setting as one of s's sessions sees
// it.
func SessionSetting(ctx context.Context, s *Store, name string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v)
	return v, err
}
