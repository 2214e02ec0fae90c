package api

import (
	"net/http"

	"github.com/citycard/transit/registry"
)

// cardRecords serves the card records clearing keeps its copy from
// (clearing/cardfeed): GET /v1/cards/records?since=&limit=, paged by card
// event sequence number, no personal data.
func (s *Server) cardRecords(w http.ResponseWriter, r *http.Request, _ registry.Access) error {
	since, err := queryInt(r, "since", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", registry.MaxRecordPage, 1, registry.MaxRecordPage)
	if err != nil {
		return err
	}
	page, err := s.st.CardRecords(r.Context(), uint64(since), int(limit))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
