package console

// ridesMessages are the texts of the resident's rides.
var ridesMessages = map[string]map[string]string{
	"uk": {},
	"en": {},
}
