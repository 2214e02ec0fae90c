package api

import (
	"net/http"

	"github.com/citycard/transit/registry"
)

// noticesRequest sets whether a resident wants benefit-ending notices.
type noticesRequest struct {
	// OptOut is required: true for no notices, false to have them again.
	OptOut *bool `json:"opt_out"`
}

func decodeNotices(w http.ResponseWriter, r *http.Request) (bool, error) {
	var req noticesRequest
	if err := decode(w, r, &req); err != nil {
		return false, err
	}
	if req.OptOut == nil {
		return false, &registry.FieldError{Field: "opt_out", Problem: "missing; send {\"opt_out\": true} for no notices or false to have them"}
	}
	return *req.OptOut, nil
}

// residentNotices is GET /v1/residents/{id}/notices: the resident's
// notice setting and what they were sent.
func (s *Server) residentNotices(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	return s.writeNotices(w, r, a, id)
}

func (s *Server) writeNotices(w http.ResponseWriter, r *http.Request, a registry.Access, id int64) error {
	rn, err := s.st.ResidentNotices(r.Context(), a, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rn)
	return nil
}

// setResidentNotices is POST /v1/residents/{id}/notices {opt_out}: the
// desk records a resident's wish.
func (s *Server) setResidentNotices(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	return s.setNotices(w, r, a, id)
}

func (s *Server) setNotices(w http.ResponseWriter, r *http.Request, a registry.Access, id int64) error {
	out, err := decodeNotices(w, r)
	if err != nil {
		return err
	}
	if err := s.st.SetNoticeOptOut(r.Context(), a, id, out); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"opted_out": out})
	return nil
}

// myNotices is GET /v1/me/notices.
func (s *Server) myNotices(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	if a.Purpose == "" {
		a.Purpose = registry.PurposeOwnView
	}
	return s.writeNotices(w, r, a, a.Actor.Resident)
}

// setMyNotices is POST /v1/me/notices {opt_out}: a resident opts out of
// notices, or back in.
func (s *Server) setMyNotices(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	return s.setNotices(w, r, a, a.Actor.Resident)
}
