package console

import (
	"testing"
	"time"

	"github.com/citycard/transit/registry"
)

func TestDropReasonsTranslated(t *testing.T) {
	p := &page{Lang: "uk", loc: time.UTC}
	for in, want := range map[string]string{
		registry.NoticeOptedOut:                        "повідомлення вимкнено",
		registry.NoticeRefused:                         "поштовий сервер відмовив: такої скриньки немає",
		registry.NoticeEndMoved + "15.03.2026":         "останній день пільги змінено на 15.03.2026",
		registry.NoticeGaveUp + "8 attempts: dial tcp": "не вдалося надіслати після 8 спроб (dial tcp)",
		"something the outbox did not say before":      "something the outbox did not say before",
	} {
		if got := p.dropReason(in); got != want {
			t.Errorf("dropReason(%q) = %q, want %q", in, got, want)
		}
	}
	n := registry.Notice{Dropped: time.Date(2026, 12, 5, 8, 30, 0, 0, time.UTC), DropReason: registry.NoticeContactCleared}
	if got := p.NoticeState(n); got != "не надсилатиметься (05.12.2026 08:30): контакт видалено з реєстру" {
		t.Errorf("NoticeState = %q", got)
	}
	// Every reason the outbox records has its text in every language.
	for r, key := range dropReasons {
		for _, lang := range languages {
			if _, ok := messages[lang][key]; !ok {
				t.Errorf("%s: no %s text for %q", key, lang, r)
			}
		}
	}
}
