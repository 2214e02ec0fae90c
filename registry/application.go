package registry

import (
	"bytes"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"
)

// ApplicationKind is what a resident applies for online.
type ApplicationKind string

// Kinds of application.
const (
	// ApplyCard is a first card: one the desk orders and personalises,
	// and the resident collects.
	ApplyCard ApplicationKind = "card"
	// ApplyBenefit is a benefit entitlement of a category, on the
	// evidence attached.
	ApplyBenefit ApplicationKind = "benefit"
)

// ApplicationStatus is where an application is.
type ApplicationStatus string

// Statuses. An application is submitted until a desk accepts or refuses
// it; both are final.
const (
	ApplicationSubmitted ApplicationStatus = "submitted"
	ApplicationAccepted  ApplicationStatus = "accepted"
	ApplicationRefused   ApplicationStatus = "refused"
)

// Limits of an application's attachments: a few scans or photos of
// documents, not an archive.
const (
	MaxAttachments       = 4
	MaxAttachmentBytes   = 5 << 20
	MaxAttachmentName    = 100
	MaxApplicationNote   = 500
	MaxApplicationsShown = 100
)

// AttachmentTypes are the types an attachment may have, as its bytes
// show them (not as the browser says): PDF, JPEG and PNG.
var AttachmentTypes = []string{"application/pdf", "image/jpeg", "image/png"}

// Attachment is a document attached to an application. Its bytes are
// personal data: every read is audited.
type Attachment struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
	Size int    `json:"size"`
	// Data is filled only when the attachment itself is read.
	Data []byte `json:"-"`
}

// Application is a resident's request for a card or a benefit, with
// the evidence attached, and a desk's decision on it.
type Application struct {
	ID       int64           `json:"id"`
	Resident int64           `json:"resident"`
	Kind     ApplicationKind `json:"kind"`
	// Category is the benefit applied for (ApplyBenefit).
	Category uint16 `json:"category,omitempty"`
	// Note is what the resident wrote.
	Note        string            `json:"note"`
	Status      ApplicationStatus `json:"status"`
	Submitted   time.Time         `json:"submitted"`
	Attachments []Attachment      `json:"attachments"`
	// Decided, DecidedBy and Reason record the desk's decision; Result
	// names what acceptance created ("entitlement/12", "card/1001...").
	Decided   time.Time `json:"decided,omitzero"`
	DecidedBy string    `json:"decided_by,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Result    string    `json:"result,omitempty"`
	// ResidentName is read with the desk's queue.
	ResidentName string `json:"resident_name,omitempty"`
}

// Decision is a desk's acceptance or refusal of an application. An
// accepted benefit application creates Entitlement (its category and
// holder are the application's) through the same checks as a desk's
// grant; an accepted card application orders a card as the desk does.
type Decision struct {
	Accept bool
	// Reason is required for a refusal, and recorded for an acceptance.
	Reason      string
	Entitlement Entitlement
}

// ApplicationQuery selects applications: a resident's (a resident
// always gets their own), a status, or one by ID; at most
// MaxApplicationsShown, oldest first.
type ApplicationQuery struct {
	Resident int64
	Status   ApplicationStatus
	ID       int64
}

// CheckApplication reports what is wrong with a new application and
// cleans its text fields: a known kind, a benefit category for a benefit
// (CategoryCodes), a note within bounds, 1 to MaxAttachments attachments
// for a benefit (0 to MaxAttachments for a card), each within
// MaxAttachmentBytes, of a type AttachmentTypes names as its bytes show,
// with a plain file name.
func CheckApplication(ap *Application) error {
	// The caller's documents stay as they were.
	ap.Attachments = slices.Clone(ap.Attachments)
	switch ap.Kind {
	case ApplyCard:
		ap.Category = 0
	case ApplyBenefit:
		if !slices.Contains(CategoryCodes, ap.Category) {
			return fieldErr("category", "%d is not a benefit category the city grants; choose one of the list", ap.Category)
		}
		if len(ap.Attachments) == 0 {
			return fieldErr("attachments", "attach the document that gives the right to the benefit (a scan or photo, PDF, JPEG or PNG)")
		}
	default:
		return fieldErr("kind", "%q; apply for a card or a benefit", ap.Kind)
	}
	if err := cleanField("note", &ap.Note, MaxApplicationNote, false); err != nil {
		return err
	}
	if len(ap.Attachments) > MaxAttachments {
		return fieldErr("attachments", "%d files; attach at most %d", len(ap.Attachments), MaxAttachments)
	}
	for i := range ap.Attachments {
		if err := checkAttachment(&ap.Attachments[i]); err != nil {
			return err
		}
	}
	return nil
}

func checkAttachment(at *Attachment) error {
	at.Name = AttachmentName(at.Name)
	switch {
	case len(at.Data) == 0:
		return fieldErr("attachments", "%s is empty; attach the scan or photo itself", at.Name)
	case len(at.Data) > MaxAttachmentBytes:
		return fieldErr("attachments", "%s is %d KiB; a file may have at most %d MiB (scan at a lower resolution)", at.Name, len(at.Data)>>10, MaxAttachmentBytes>>20)
	}
	t := SniffAttachment(at.Data)
	if t == "" {
		return fieldErr("attachments", "%s is not a PDF, JPEG or PNG file; attach a scan or photo in one of those", at.Name)
	}
	at.Type, at.Size = t, len(at.Data)
	return nil
}

// SniffAttachment returns the type of data if it is one of
// AttachmentTypes, by its bytes; "" otherwise.
func SniffAttachment(data []byte) string {
	if bytes.HasPrefix(data, []byte("%PDF-")) {
		return "application/pdf"
	}
	t := http.DetectContentType(data)
	if slices.Contains(AttachmentTypes, t) {
		return t
	}
	return ""
}

// AttachmentName returns a file name fit to show and to offer for
// download: its last path element, without control or direction
// characters, at most MaxAttachmentName characters; "attachment" when
// nothing is left.
func AttachmentName(name string) string {
	name = strings.ToValidUTF8(name, "")
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || unicode.In(r, unicode.Cf) || r == '"' {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if r := []rune(name); len(r) > MaxAttachmentName {
		name = string(r[len(r)-MaxAttachmentName:])
	}
	if name == "" || name == "." || name == "/" {
		return "attachment"
	}
	return name
}

// CheckDecision reports what is wrong with a decision on ap.
func CheckDecision(ap Application, d *Decision) error {
	if ap.Status != ApplicationSubmitted {
		return fmt.Errorf("%w: application %d was %s on %s by %s", ErrConflict, ap.ID, ap.Status, ap.Decided.Format(time.DateOnly), ap.DecidedBy)
	}
	r, err := CleanText("reason", strings.TrimSpace(d.Reason), MaxApplicationNote, !d.Accept)
	if err != nil {
		if !d.Accept {
			return fmt.Errorf("%w (say why the application is refused: the resident reads it)", err)
		}
		return err
	}
	d.Reason = r
	if d.Accept && ap.Kind == ApplyBenefit {
		e := &d.Entitlement
		e.ResidentID, e.Category, e.Source, e.SourceRef = ap.Resident, ap.Category, SourceDesk, ""
		return e.Validate()
	}
	return nil
}
