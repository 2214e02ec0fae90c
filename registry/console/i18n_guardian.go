package console

import "regexp"

// guardianMessages are the texts of links between children and their
// parents or guardians: the desk's section, the parent's pages, the audit
// log's actions.
var guardianMessages = map[string]map[string]string{
	"uk": {
		"guardian.title":              "Батьки, опікуни та діти",
		"guardian.who":                "Хто",
		"guardian.parent":             "Батько, мати чи опікун: %s",
		"guardian.child":              "Дитина: %s (народж. %s)",
		"guardian.evidence":           "Документ, що підтверджує зв'язок",
		"guardian.since":              "Записано",
		"guardian.state":              "Стан",
		"guardian.state.active":       "діє до %s включно (до 18 років)",
		"guardian.state.grown":        "закінчився %s: дитині виповнилося 18",
		"guardian.state.ended":        "припинено %s (%s): %s",
		"guardian.none":               "Зв'язків із батьками, опікунами чи дітьми не записано.",
		"guardian.end.legend":         "Припинити зв'язок",
		"guardian.end.reason":         "Причина",
		"guardian.end.submit":         "Припинити…",
		"guardian.link.legend":        "Записати батька, матір чи опікуна",
		"guardian.link.number":        "РНОКПП батька, матері чи опікуна",
		"guardian.link.number.hint":   "Десять цифр. Особа має бути зареєстрована в реєстрі й повнолітня.",
		"guardian.link.evidence.hint": "Назва і номер документа, який ви бачили: свідоцтво про народження, рішення суду чи органу опіки.",
		"guardian.link.submit":        "Записати зв'язок",
		"guardian.err.number":         "Введіть РНОКПП батька, матері чи опікуна: десять цифр.",
		"guardian.err.unknown":        "Особи з РНОКПП %s у реєстрі немає. Спершу зареєструйте її.",
		"guardian.err.evidence":       "Назвіть документ, що підтверджує зв'язок, і його номер.",
		"guardian.err.reason":         "Назвіть причину, з якої зв'язок припиняється.",
		"guardian.done.linked":        "Зв'язок записано. Батько, мати чи опікун бачитиме дані й поїздки дитини у своєму кабінеті.",
		"guardian.done.unlinked":      "Зв'язок припинено.",
		"guardian.confirm.what":       "Припинити зв'язок між %s і дитиною %s. Причина: %s.",
		"guardian.confirm.after":      "%s більше не бачитиме даних і поїздок дитини й не зможе блокувати її картку. Запис про зв'язок залишиться в реєстрі.",
		"guardian.confirm.button":     "Так, припинити зв'язок",
		"child.title":                 "Дані дитини",
		"child.list":                  "Мої діти",
		"child.back":                  "← До мого кабінету",
		"child.intro":                 "Ви бачите дані дитини %s як батько, мати чи опікун; зв'язок %s. Кожен перегляд записується в журнал доступу дитини під вашим іменем.",
		"child.cards":                 "Картки дитини",
		"child.rides":                 "Поїздки дитини",
		"child.audited":               "Цей перегляд записано в журнал доступу дитини.",
		"child.notyours":              "Цієї дитини немає серед ваших дітей у реєстрі. Якщо ви її батько, мати чи опікун, зверніться до центру видачі карток із документом.",
		"act.link guardian":           "записано батька, матір чи опікуна (запис %s)",
		"act.link guardian of":        "записано батьком, матір'ю чи опікуном дитини (запис %s)",
		"act.end guardian link":       "припинено зв'язок із батьком, матір'ю чи опікуном (запис %s)",
		"act.end guardian link of":    "припинено зв'язок із дитиною (запис %s)",
	},
	"en": {
		"guardian.title":              "Parents, guardians and children",
		"guardian.who":                "Who",
		"guardian.parent":             "Parent or guardian: %s",
		"guardian.child":              "Child: %s (born %s)",
		"guardian.evidence":           "Document that proves the link",
		"guardian.since":              "Recorded",
		"guardian.state":              "State",
		"guardian.state.active":       "stands until %s (under 18)",
		"guardian.state.grown":        "ended %s: the child turned 18",
		"guardian.state.ended":        "ended %s (%s): %s",
		"guardian.none":               "No links to parents, guardians or children are recorded.",
		"guardian.end.legend":         "End the link",
		"guardian.end.reason":         "Reason",
		"guardian.end.submit":         "End…",
		"guardian.link.legend":        "Record a parent or guardian",
		"guardian.link.number":        "Registry number (РНОКПП) of the parent or guardian",
		"guardian.link.number.hint":   "Ten digits. The person must be registered and of age.",
		"guardian.link.evidence.hint": "The name and number of the document you saw: a birth certificate, a court's or guardianship authority's decision.",
		"guardian.link.submit":        "Record the link",
		"guardian.err.number":         "Type the parent's or guardian's registry number: ten digits.",
		"guardian.err.unknown":        "Nobody with registry number %s is registered. Register them first.",
		"guardian.err.evidence":       "Name the document that proves the link, and its number.",
		"guardian.err.reason":         "Say why the link ends.",
		"guardian.done.linked":        "The link is recorded. The parent or guardian sees the child's record and rides in their own view.",
		"guardian.done.unlinked":      "The link is ended.",
		"guardian.confirm.what":       "End the link between %s and the child %s. Reason: %s.",
		"guardian.confirm.after":      "%s will no longer see the child's record and rides, nor block the child's card. The link stays on record.",
		"guardian.confirm.button":     "Yes, end the link",
		"child.title":                 "Your child's record",
		"child.list":                  "My children",
		"child.back":                  "← Back to my record",
		"child.intro":                 "You see %s's record as their parent or guardian; the link %s. Every view is recorded in the child's access log under your name.",
		"child.cards":                 "The child's cards",
		"child.rides":                 "The child's rides",
		"child.audited":               "This view is recorded in the child's access log.",
		"child.notyours":              "This child is not among your children in the registry. If you are their parent or guardian, bring the document to a card desk.",
		"act.link guardian":           "recorded a parent or guardian (record %s)",
		"act.link guardian of":        "recorded as a child's parent or guardian (record %s)",
		"act.end guardian link":       "ended the link to a parent or guardian (record %s)",
		"act.end guardian link of":    "ended the link to a child (record %s)",
	},
}

// auditGuardian is registry/store's "link guardian: resident N" (in the
// child's record) and "link guardian of resident N" (in the parent's),
// and the same with "end guardian link".
var auditGuardian = regexp.MustCompile(`^(link guardian|end guardian link)(: | of )resident ([0-9]{1,18})$`)

// guardianAction puts a guardian link's audit action in lang, or "" when
// action is none.
func guardianAction(lang, action string) string {
	m := auditGuardian.FindStringSubmatch(action)
	if m == nil {
		return ""
	}
	key := "act." + m[1]
	if m[2] == " of " {
		key += " of"
	}
	return translate(lang, key, m[3])
}
