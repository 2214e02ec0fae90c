package console

// personaliseMessages are the texts of personalising a card from the desk page.
var personaliseMessages = map[string]map[string]string{
	"uk": {},
	"en": {},
}
