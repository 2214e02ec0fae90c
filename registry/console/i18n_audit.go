package console

import (
	"regexp"
	"strconv"

	"github.com/citycard/transit/card"
)

// auditMessages put the registry's audit actions in words. The audit
// log keeps each action as the store wrote it (in English, and hashed
// into the chain); pages translate it when they show it.
var auditMessages = map[string]map[string]string{
	"uk": {
		"act.register resident":                            "зареєстровано мешканця",
		"act.read resident":                                "переглянуто запис мешканця",
		"act.found in a search":                            "знайдено під час пошуку",
		"act.add entitlement":                              "надано пільгу",
		"act.end entitlement":                              "пільгу завершено",
		"act.listed with an expiring entitlement":          "у списку пільг, строк яких спливає",
		"act.order card":                                   "замовлено картку",
		"act.read personalisation data":                    "прочитано дані для персоналізації картки",
		"act.read card data":                               "прочитано дані картки",
		"act.read contact to send a sign-in code":          "прочитано контакт, щоб надіслати код входу",
		"act.import benefit recipients":                    "імпорт отримувачів пільг",
		"act.import benefit recipients (dry run)":          "пробний імпорт отримувачів пільг (без змін)",
		"act.card status":                                  "картка: %s → %s",
		"act.replace card":                                 "картку замінено на %s, перенесено %s грн (%s)",
		"act.source.clearing":                              "за даними клірингу",
		"act.source.card":                                  "за даними картки",
		"act.benefit-ending notice queued":                 "повідомлення про завершення пільги поставлено в чергу",
		"act.read contact to send a benefit-ending notice": "прочитано контакт, щоб надіслати повідомлення про завершення пільги",
		"act.benefit-ending notice sent":                   "надіслано повідомлення про завершення пільги",
		"act.benefit-ending notice dropped":                "повідомлення про завершення пільги не надсилатиметься",
		"act.notices: opted out":                           "повідомлення вимкнено",
		"act.notices: opted in":                            "повідомлення увімкнено",
		"act.read notices":                                 "переглянуто повідомлення",
	},
	"en": {
		"act.register resident":                            "registered the resident",
		"act.read resident":                                "read the resident's record",
		"act.found in a search":                            "found in a search",
		"act.add entitlement":                              "granted a benefit",
		"act.end entitlement":                              "ended a benefit",
		"act.listed with an expiring entitlement":          "listed with an expiring benefit",
		"act.order card":                                   "ordered a card",
		"act.read personalisation data":                    "read the data to personalise a card",
		"act.read card data":                               "read the card's data",
		"act.read contact to send a sign-in code":          "read the contact to send a sign-in code",
		"act.import benefit recipients":                    "imported benefit recipients",
		"act.import benefit recipients (dry run)":          "tried an import of benefit recipients (no change)",
		"act.card status":                                  "card: %s → %s",
		"act.replace card":                                 "card replaced by %s, %s UAH carried (%s)",
		"act.source.clearing":                              "as clearing knows it",
		"act.source.card":                                  "as the card holds it",
		"act.benefit-ending notice queued":                 "queued a benefit-ending notice",
		"act.read contact to send a benefit-ending notice": "read the contact to send a benefit-ending notice",
		"act.benefit-ending notice sent":                   "sent a benefit-ending notice",
		"act.benefit-ending notice dropped":                "dropped a benefit-ending notice",
		"act.notices: opted out":                           "turned notices off",
		"act.notices: opted in":                            "turned notices on",
		"act.read notices":                                 "read the notices",
	},
}

var (
	// auditStatus is registry/store's "card active -> lost".
	auditStatus = regexp.MustCompile(`^card ([a-z]+) -> ([a-z]+)$`)
	// auditReplace is registry/store's "replace card by N carrying K kop
	// from SOURCE".
	auditReplace = regexp.MustCompile(`^replace card by ([0-9]{16}) carrying (-?[0-9]{1,18}) kop from ([a-z]+)$`)
)

// auditAction puts a stored audit action in lang. An action the
// catalogue does not know (written by a newer part of the registry)
// shows as it is stored: the record is never hidden.
func auditAction(lang, action string) string {
	if _, ok := messages[lang]["act."+action]; ok {
		return translate(lang, "act."+action)
	}
	if m := auditStatus.FindStringSubmatch(action); m != nil && knownStatus(lang, m[1]) && knownStatus(lang, m[2]) {
		return translate(lang, "act.card status", translate(lang, "status."+m[1]), translate(lang, "status."+m[2]))
	}
	if s := guardianAction(lang, action); s != "" {
		return s
	}
	if m := auditReplace.FindStringSubmatch(action); m != nil {
		kop, err := strconv.ParseInt(m[2], 10, 64)
		n, nerr := card.ParseNumber(m[1])
		src := m[3] // registry.BalanceSource
		if _, ok := messages[lang]["act.source."+src]; ok && err == nil && nerr == nil {
			return translate(lang, "act.replace card", formatCard(n), formatUAH(lang, kop), translate(lang, "act.source."+src))
		}
	}
	return action
}

// knownStatus reports whether s is a card status the catalogue names.
func knownStatus(lang, s string) bool {
	_, ok := messages[lang]["status."+s]
	return ok
}
