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

// publishedTariff serves clearing the signed tariff the registry
// publishes to validators (GET /v1/tariff?since=N, as GET
// /v1/validator/tariff answers a validator), for a bearer token rather
// than a device's signature: clearing re-rates rides with it
// (clearing/tariffs verifies the signature itself). The tariff holds no
// personal data; it is the other file of the validators' feed, beside the
// hotlist that GET /v1/cards/blocked serves.
func (s *Server) publishedTariff(w http.ResponseWriter, r *http.Request, _ registry.Access) error {
	if s.validator == nil {
		writeError(w, http.StatusNotFound, "this registry publishes no tariff; start it with its HSM and a tariff (transit registry serve --help)")
		return nil
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = "/tariff", ""
	s.validator.ServeHTTP(w, r2)
	return nil
}
