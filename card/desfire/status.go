package desfire

import (
	"errors"
	"fmt"
)

// Status is a DESFire native status code, the second byte of "91 xx".
type Status byte

// DESFire EV1 status codes.
const (
	StatusOK                   Status = 0x00
	StatusNoChanges            Status = 0x0C
	StatusOutOfEEPROM          Status = 0x0E
	StatusIllegalCommand       Status = 0x1C
	StatusIntegrityError       Status = 0x1E
	StatusNoSuchKey            Status = 0x40
	StatusLengthError          Status = 0x7E
	StatusPermissionDenied     Status = 0x9D
	StatusParameterError       Status = 0x9E
	StatusApplicationNotFound  Status = 0xA0
	StatusApplicationIntegrity Status = 0xA1
	StatusAuthenticationError  Status = 0xAE
	StatusAdditionalFrame      Status = 0xAF
	StatusBoundaryError        Status = 0xBE
	StatusPICCIntegrity        Status = 0xC1
	StatusCommandAborted       Status = 0xCA
	StatusPICCDisabled         Status = 0xCD
	StatusCountError           Status = 0xCE
	StatusDuplicateError       Status = 0xDE
	StatusEEPROMError          Status = 0xEE
	StatusFileNotFound         Status = 0xF0
	StatusFileIntegrity        Status = 0xF1
)

var statusText = map[Status]string{
	StatusOK:                   "success",
	StatusNoChanges:            "no changes",
	StatusOutOfEEPROM:          "out of EEPROM",
	StatusIllegalCommand:       "illegal command",
	StatusIntegrityError:       "integrity error (CRC or MAC)",
	StatusNoSuchKey:            "no such key",
	StatusLengthError:          "length error",
	StatusPermissionDenied:     "permission denied",
	StatusParameterError:       "parameter error",
	StatusApplicationNotFound:  "application not found",
	StatusApplicationIntegrity: "application integrity error",
	StatusAuthenticationError:  "authentication error",
	StatusAdditionalFrame:      "additional frame",
	StatusBoundaryError:        "boundary error",
	StatusPICCIntegrity:        "PICC integrity error",
	StatusCommandAborted:       "command aborted",
	StatusPICCDisabled:         "PICC disabled",
	StatusCountError:           "count error",
	StatusDuplicateError:       "duplicate error",
	StatusEEPROMError:          "EEPROM error",
	StatusFileNotFound:         "file not found",
	StatusFileIntegrity:        "file integrity error",
}

// String names the status, e.g. "boundary error (0xBE)".
func (s Status) String() string {
	if t, ok := statusText[s]; ok {
		return fmt.Sprintf("%s (0x%02X)", t, byte(s))
	}
	return fmt.Sprintf("unknown status 0x%02X", byte(s))
}

// StatusError is a DESFire status other than success returned by a
// command. Compare with errors.Is against the sentinels below, which match
// on the status alone.
type StatusError struct {
	// Command is the native command byte (INS) that failed; zero in the
	// sentinels.
	Command byte
	Status  Status
}

func (e *StatusError) Error() string {
	msg := "desfire: " + e.Status.String()
	if e.Command != 0 {
		msg = fmt.Sprintf("desfire: command %s (0x%02X): %s", commandName(e.Command), e.Command, e.Status)
	}
	switch e.Status {
	case StatusAuthenticationError:
		msg += "; the session is closed: authenticate with the right key first"
	case StatusPermissionDenied:
		msg += "; the authenticated key has no right to this operation"
	case StatusIntegrityError:
		msg += "; the session is closed: authenticate again"
	}
	return msg
}

// Is reports whether target is a *StatusError with the same status.
func (e *StatusError) Is(target error) bool {
	t, ok := target.(*StatusError)
	return ok && t.Status == e.Status
}

func sentinel(s Status) *StatusError { return &StatusError{Status: s} }

// Sentinels for errors.Is, one per DESFire status.
var (
	ErrNoChanges            = sentinel(StatusNoChanges)
	ErrOutOfEEPROM          = sentinel(StatusOutOfEEPROM)
	ErrIllegalCommand       = sentinel(StatusIllegalCommand)
	ErrIntegrity            = sentinel(StatusIntegrityError)
	ErrNoSuchKey            = sentinel(StatusNoSuchKey)
	ErrLength               = sentinel(StatusLengthError)
	ErrPermissionDenied     = sentinel(StatusPermissionDenied)
	ErrParameter            = sentinel(StatusParameterError)
	ErrApplicationNotFound  = sentinel(StatusApplicationNotFound)
	ErrApplicationIntegrity = sentinel(StatusApplicationIntegrity)
	ErrAuthentication       = sentinel(StatusAuthenticationError)
	ErrAdditionalFrame      = sentinel(StatusAdditionalFrame)
	ErrBoundary             = sentinel(StatusBoundaryError)
	ErrPICCIntegrity        = sentinel(StatusPICCIntegrity)
	ErrCommandAborted       = sentinel(StatusCommandAborted)
	ErrPICCDisabled         = sentinel(StatusPICCDisabled)
	ErrCount                = sentinel(StatusCountError)
	ErrDuplicate            = sentinel(StatusDuplicateError)
	ErrEEPROM               = sentinel(StatusEEPROMError)
	ErrFileNotFound         = sentinel(StatusFileNotFound)
	ErrFileIntegrity        = sentinel(StatusFileIntegrity)
)

// Errors found on the reader side.
var (
	// ErrResponseMAC: the 8-byte CMAC a card appended to a response does
	// not verify. The data must not be trusted; the session is closed.
	ErrResponseMAC = errors.New("desfire: response MAC does not verify")
	// ErrResponseCRC: an enciphered response does not decrypt to data
	// with a valid CRC32. The session is closed.
	ErrResponseCRC = errors.New("desfire: enciphered response CRC does not verify")
	// ErrCardNotAuthentic: in AuthenticateAES the card did not prove that
	// it holds the key (its RndA' is wrong).
	ErrCardNotAuthentic = errors.New("desfire: card failed to prove the key during authentication")
	// ErrNotAuthenticated: the command needs an authenticated session.
	ErrNotAuthenticated = errors.New("desfire: not authenticated: call AuthenticateAES first")
	// ErrMalformedResponse: the response has the wrong length or shape.
	ErrMalformedResponse = errors.New("desfire: malformed response")
)

// ISOError is an ISO/IEC 7816-4 status word other than 91xx: the card or
// reader did not take the APDU as a DESFire command (e.g. 6E00 when the
// card is not a DESFire card).
type ISOError struct {
	Command byte
	SW      uint16
}

func (e *ISOError) Error() string {
	if e.Command == insISOSelectFile {
		switch e.SW {
		case swFileNotFound:
			return "desfire: ISO SELECT: no application or file has that DF name or file ID (6A82); list them with GetDFNames or GetISOFileIDs"
		case swWrongP1P2:
			return "desfire: ISO SELECT: the card refuses the selection mode (6A86)"
		}
	}
	return fmt.Sprintf("desfire: command %s (0x%02X): ISO status word %04X; is this a DESFire card?", commandName(e.Command), e.Command, e.SW)
}

// Is reports whether target is an *ISOError with the same status word.
func (e *ISOError) Is(target error) bool {
	t, ok := target.(*ISOError)
	return ok && t.SW == e.SW
}

// ISO/IEC 7816-4 status words the ISO commands answer.
const (
	swFileNotFound uint16 = 0x6A82
	swWrongP1P2    uint16 = 0x6A86
)

// ErrISOFileNotFound matches (errors.Is) an ISO SELECT of a DF name or
// file ID that the card does not have (status word 6A82).
var ErrISOFileNotFound error = &ISOError{SW: swFileNotFound}
