package console

// deskMessages are the texts of the desk's registration, entitlement and receipt pages.
var deskMessages = map[string]map[string]string{
	"uk": {},
	"en": {},
}
