package console

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Languages the console speaks, the city's own first: it is the default
// when a browser asks for neither.
var languages = []string{"uk", "en"}

// langCookie remembers a language chosen with ?lang=.
const langCookie = "console_lang"

// chooseLang picks the page language: an explicit ?lang= wins (and is
// remembered in a cookie by the caller), then the remembered choice, then
// the browser's Accept-Language, then Ukrainian.
func chooseLang(r *http.Request) (lang string, explicit bool) {
	if l := r.URL.Query().Get("lang"); slices.Contains(languages, l) {
		return l, true
	}
	if c, err := r.Cookie(langCookie); err == nil && slices.Contains(languages, c.Value) {
		return c.Value, false
	}
	return acceptLanguage(r.Header.Get("Accept-Language")), false
}

// acceptLanguage returns the known language the header prefers most
// (RFC 9110 §12.5.4: highest q first, ties in header order), or the
// default. Only the primary subtag counts: uk-UA is uk.
func acceptLanguage(header string) string {
	best, bestQ := languages[0], 0.0
	for part := range strings.SplitSeq(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if q > bestQ && slices.Contains(languages, primary) {
			best, bestQ = primary, q
		}
	}
	return best
}

// messages is the catalogue: every text a page shows, per language. It
// is put together from one part per area of the console, each in a file
// of its own. Registry errors are English; pages show them under a
// translated heading.
var messages = catalogue(coreMessages, financeMessages, deskMessages, personaliseMessages, ridesMessages, closeMessages, signinMessages, fleetMessages, auditMessages, confirmMessages, noticesMessages, guardianMessages, importMessages, applyMessages)

// catalogue merges parts into one catalogue. A key in two parts is a
// programming error, which it reports by panicking when the package
// loads, so that any test run finds it.
func catalogue(parts ...map[string]map[string]string) map[string]map[string]string {
	all := make(map[string]map[string]string, len(languages))
	for _, lang := range languages {
		all[lang] = make(map[string]string)
	}
	for _, part := range parts {
		for lang, msgs := range part {
			if all[lang] == nil {
				panic(fmt.Sprintf("console: texts in %q, which the console does not speak", lang))
			}
			for k, v := range msgs {
				if _, dup := all[lang][k]; dup {
					panic(fmt.Sprintf("console: message %q (%s) is defined twice", k, lang))
				}
				all[lang][k] = v
			}
		}
	}
	return all
}

// coreMessages are the texts the first pages brought: sign-in, errors,
// navigation, and the desk, finance and resident pages' common parts.
var coreMessages = map[string]map[string]string{
	"en": {
		"app":          "City card console",
		"skip":         "Skip to main content",
		"lang.uk":      "Українська",
		"lang.en":      "English",
		"lang.choose":  "Language",
		"nav.label":    "Main menu",
		"nav.desk":     "Desk",
		"nav.finance":  "Finance",
		"nav.me":       "My data",
		"nav.audit":    "Audit log",
		"signed.in.as": "Signed in as %s (%s)",
		"logout":       "Sign out",
		"role.desk":    "desk operator", "role.supervisor": "supervisor", "role.finance": "finance",
		"role.auditor": "auditor", "role.resident": "resident", "role.operator": "operator", "role.service": "service",

		"login.title":   "Sign in",
		"login.intro":   "Staff sign in with their own user name and password. The console keeps you signed in for a limited time; sign out when you leave the desk.",
		"login.hint":    "Never tell anyone your password, not even an administrator.",
		"login.submit":  "Sign in",
		"login.failed":  "Wrong user name or password.",
		"login.expired": "Your session ended. Sign in again.",
		"login.empty":   "Enter your user name and password.",
		"login.norole":  "The role %s has no pages in the console.",

		"purpose":           "Purpose of access",
		"purpose.hint":      "Why you need this person's data, e.g. \"card lost, request 4711\". It is written to the audit log the person can read.",
		"purpose.needed":    "State the purpose of access, in one line of plain text (at most 300 characters): every read of personal data is recorded with it.",
		"purpose.ask.title": "State the purpose",
		"purpose.ask.intro": "This page shows personal data. State why you open it; the purpose is recorded in the audit log.",
		"purpose.carried":   "Purpose recorded for this visit: %s",
		"continue":          "Continue",

		"desk.title":             "Issuance desk",
		"desk.search":            "Find a resident",
		"desk.query":             "Name or registry number",
		"desk.query.hint":        "At least 3 letters of the surname, or the 10-digit registry number (РНОКПП).",
		"desk.search.go":         "Search",
		"desk.results":           "Residents found: %d",
		"desk.none":              "Nobody matches. Check the spelling or search by registry number.",
		"desk.open":              "Open the record of %s",
		"resident.title":         "Resident record",
		"resident.name":          "Name",
		"resident.number":        "Registry number",
		"resident.birth":         "Date of birth",
		"resident.contact":       "Contact",
		"resident.id":            "Record number",
		"ent.title":              "Benefit entitlements",
		"ent.none":               "No entitlements.",
		"ent.category":           "Category",
		"ent.from":               "From",
		"ent.to":                 "Until (inclusive)",
		"ent.funding":            "Paid by",
		"ent.limit":              "Rides a month",
		"ent.unlimited":          "unlimited",
		"ent.basis":              "Legal basis",
		"ent.state":              "State",
		"ent.valid":              "valid",
		"ent.ended":              "ended",
		"ent.future":             "not yet started",
		"ent.expiring":           "ends in %d days",
		"cards.title":            "Cards",
		"cards.none":             "No cards.",
		"card.number":            "Card number",
		"card.status":            "Status",
		"card.reason":            "Reason",
		"card.issued":            "Issued",
		"card.expires":           "Valid until",
		"card.carried":           "Balance carried over",
		"card.actions":           "Actions",
		"card.replaces":          "replaces %s",
		"block.legend":           "Block card %s",
		"block.reason":           "Reason",
		"block.note":             "Note (optional)",
		"block.submit":           "Block card",
		"replace.legend":         "Order a replacement for card %s",
		"replace.clearing":       "Last balance known to clearing, UAH",
		"replace.card":           "Balance read from the card, UAH (optional)",
		"replace.hint":           "The card's own balance wins when the holder brought the card. Use a point or a comma: 12.50",
		"replace.submit":         "Order replacement",
		"order.submit":           "Order a new card",
		"order.legend":           "The resident has no card in use",
		"done.blocked":           "Card %s is blocked. Validators refuse it after the next hotlist.",
		"done.replaced":          "Card %s is replaced by new card %s; it is ordered and waits for personalisation.",
		"done.ordered":           "Card %s is ordered; it waits for personalisation.",
		"done.closed":            "Period %s is closed and its statements are signed.",
		"bad.balance":            "%s: write an amount in hryvnias, such as 12.50.",
		"funding.city":           "city budget",
		"funding.state":          "state budget",
		"status.ordered":         "ordered",
		"status.personalised":    "personalised",
		"status.active":          "active",
		"status.blocked":         "blocked",
		"status.lost":            "lost",
		"status.stolen":          "stolen",
		"status.replaced":        "replaced",
		"status.expired":         "expired",
		"reason.lost":            "lost",
		"reason.stolen":          "stolen",
		"reason.fraud":           "fraud",
		"reason.benefit-revoked": "benefit revoked",
		"reason.blocked-by-desk": "blocked by the desk",
		"reason.replaced":        "replaced",
		"category.11":            "pensioner",
		"category.12":            "veteran",
		"category.21":            "person with disability",
		"category.31":            "student",

		"fin.title":          "Compensation statements",
		"fin.period":         "Period (YYYY-MM)",
		"fin.period.hint":    "The accounting month, for example 2026-11.",
		"fin.show":           "Show",
		"fin.statement":      "Statement for %s",
		"fin.adjustment":     "Adjustment of %s booked in %s (rides that arrived after %s was closed)",
		"fin.draft":          "Draft: the period is open and its figures may still grow.",
		"fin.closed":         "Closed %s. Content hash %s, signed with %s.",
		"fin.verified":       "The signature verifies.",
		"fin.unverified":     "Verification failed: %s",
		"fin.by.carrier":     "By carrier",
		"fin.by.category":    "By benefit category",
		"fin.by.funding":     "By funding source",
		"fin.carrier":        "Carrier",
		"fin.category":       "Category",
		"fin.funding":        "Funding source",
		"fin.rides":          "Benefit rides",
		"fin.fare":           "Fares, UAH",
		"fin.compensation":   "Compensation, UAH",
		"fin.total":          "Total",
		"fin.no.lines":       "No benefit rides are booked in this statement.",
		"fin.download":       "Download",
		"fin.csv":            "Compensation %s as CSV",
		"fin.xlsx":           "Compensation %s as XLSX",
		"fin.close.legend":   "Close period %s",
		"fin.close.intro":    "Closing freezes, hashes and signs the period's statements with the HSM key. Rides of the period that arrive later go into an adjustment statement of the next open period. This cannot be undone.",
		"fin.close.early":    "Close before the month has ended",
		"fin.close.submit":   "Close and sign %s",
		"fin.close.nokeys":   "This console was started without a signing key (--keystore or --pkcs11-module), so it cannot close periods.",
		"fin.close.notyours": "Only a supervisor may close a period.",

		"me.title":       "My data",
		"me.intro":       "Everything the city card registry holds about you, and who looked at it and why.",
		"audit.title":    "Who looked at the data, and why",
		"audit.mine":     "Access log",
		"audit.none":     "No entries.",
		"audit.at":       "When",
		"audit.user":     "Who",
		"audit.role":     "Role",
		"audit.action":   "What",
		"audit.purpose":  "Purpose",
		"audit.record":   "Record",
		"audit.resident": "Resident record number (optional)",
		"audit.filter":   "Filter",
		"audit.more":     "Later entries",

		"err.title": "Something went wrong",
		"err.400":   "The request is not right",
		"err.403":   "You may not open this page",
		"err.404":   "Not found",
		"err.409":   "This conflicts with the registry",
		"err.500":   "The console failed",
		"err.503":   "Not available",
		"err.id":    "The console logged this as error %s. Try again, and report the id if it persists.",
		"err.csrf":  "The form expired or did not come from this console. Go back, reload the page and try again.",
		"err.role":  "Your role (%s) may not do this. Ask a colleague whose role may.",
		"back":      "Back",
		"home":      "Start page",
	},
	"uk": {
		"app":          "Консоль міської картки",
		"skip":         "Перейти до основного вмісту",
		"lang.uk":      "Українська",
		"lang.en":      "English",
		"lang.choose":  "Мова",
		"nav.label":    "Головне меню",
		"nav.desk":     "Видача карток",
		"nav.finance":  "Фінанси",
		"nav.me":       "Мої дані",
		"nav.audit":    "Журнал доступу",
		"signed.in.as": "Ви увійшли як %s (%s)",
		"logout":       "Вийти",
		"role.desk":    "оператор видачі", "role.supervisor": "керівник", "role.finance": "фінанси",
		"role.auditor": "аудитор", "role.resident": "мешканець", "role.operator": "оператор системи", "role.service": "сервіс",

		"login.title":   "Вхід",
		"login.intro":   "Працівники входять зі своїм іменем користувача та паролем. Сеанс діє обмежений час; виходьте, коли залишаєте робоче місце.",
		"login.hint":    "Нікому не повідомляйте свій пароль, навіть адміністраторові.",
		"login.submit":  "Увійти",
		"login.failed":  "Неправильне ім'я користувача або пароль.",
		"login.expired": "Сеанс завершився. Увійдіть знову.",
		"login.empty":   "Введіть ім'я користувача та пароль.",
		"login.norole":  "Для ролі %s у консолі немає сторінок.",

		"purpose":           "Мета доступу",
		"purpose.hint":      "Навіщо вам дані цієї особи, напр. «картку втрачено, звернення 4711». Мета записується в журнал, який особа може прочитати.",
		"purpose.needed":    "Зазначте мету доступу одним рядком звичайного тексту (до 300 символів): кожне читання персональних даних записується разом із нею.",
		"purpose.ask.title": "Зазначте мету",
		"purpose.ask.intro": "Ця сторінка містить персональні дані. Зазначте, навіщо ви її відкриваєте; мета записується в журнал доступу.",
		"purpose.carried":   "Мета, записана для цього звернення: %s",
		"continue":          "Продовжити",

		"desk.title":             "Видача карток",
		"desk.search":            "Знайти мешканця",
		"desk.query":             "Ім'я або РНОКПП",
		"desk.query.hint":        "Щонайменше 3 літери прізвища або 10-значний РНОКПП.",
		"desk.search.go":         "Шукати",
		"desk.results":           "Знайдено мешканців: %d",
		"desk.none":              "Нікого не знайдено. Перевірте написання або шукайте за РНОКПП.",
		"desk.open":              "Відкрити запис: %s",
		"resident.title":         "Запис мешканця",
		"resident.name":          "Ім'я",
		"resident.number":        "РНОКПП",
		"resident.birth":         "Дата народження",
		"resident.contact":       "Контакт",
		"resident.id":            "Номер запису",
		"ent.title":              "Пільги",
		"ent.none":               "Пільг немає.",
		"ent.category":           "Категорія",
		"ent.from":               "З",
		"ent.to":                 "До (включно)",
		"ent.funding":            "Хто платить",
		"ent.limit":              "Поїздок на місяць",
		"ent.unlimited":          "без обмежень",
		"ent.basis":              "Правова підстава",
		"ent.state":              "Стан",
		"ent.valid":              "чинна",
		"ent.ended":              "закінчилася",
		"ent.future":             "ще не почалася",
		"ent.expiring":           "закінчується через %d дн.",
		"cards.title":            "Картки",
		"cards.none":             "Карток немає.",
		"card.number":            "Номер картки",
		"card.status":            "Стан",
		"card.reason":            "Причина",
		"card.issued":            "Видано",
		"card.expires":           "Дійсна до",
		"card.carried":           "Перенесений залишок",
		"card.actions":           "Дії",
		"card.replaces":          "замінює %s",
		"block.legend":           "Заблокувати картку %s",
		"block.reason":           "Причина",
		"block.note":             "Примітка (необов'язково)",
		"block.submit":           "Заблокувати картку",
		"replace.legend":         "Замовити заміну картки %s",
		"replace.clearing":       "Останній залишок за даними клірингу, грн",
		"replace.card":           "Залишок, зчитаний з картки, грн (необов'язково)",
		"replace.hint":           "Якщо власник приніс картку, береться залишок з неї. Крапка або кома: 12,50",
		"replace.submit":         "Замовити заміну",
		"order.submit":           "Замовити нову картку",
		"order.legend":           "Мешканець не має чинної картки",
		"done.blocked":           "Картку %s заблоковано. Валідатори відмовлятимуть їй після наступного стоп-списку.",
		"done.replaced":          "Картку %s замінено новою карткою %s; її замовлено, вона чекає на персоналізацію.",
		"done.ordered":           "Картку %s замовлено; вона чекає на персоналізацію.",
		"done.closed":            "Період %s закрито, звіти підписано.",
		"bad.balance":            "%s: вкажіть суму в гривнях, напр. 12,50.",
		"funding.city":           "міський бюджет",
		"funding.state":          "державний бюджет",
		"status.ordered":         "замовлена",
		"status.personalised":    "персоналізована",
		"status.active":          "активна",
		"status.blocked":         "заблокована",
		"status.lost":            "втрачена",
		"status.stolen":          "викрадена",
		"status.replaced":        "замінена",
		"status.expired":         "прострочена",
		"reason.lost":            "втрата",
		"reason.stolen":          "крадіжка",
		"reason.fraud":           "шахрайство",
		"reason.benefit-revoked": "пільгу скасовано",
		"reason.blocked-by-desk": "заблоковано оператором",
		"reason.replaced":        "замінена",
		"category.11":            "пенсіонер",
		"category.12":            "ветеран",
		"category.21":            "особа з інвалідністю",
		"category.31":            "студент",

		"fin.title":          "Звіти про компенсацію",
		"fin.period":         "Період (РРРР-ММ)",
		"fin.period.hint":    "Обліковий місяць, напр. 2026-11.",
		"fin.show":           "Показати",
		"fin.statement":      "Звіт за %s",
		"fin.adjustment":     "Коригування %s, враховане в %s (поїздки, що надійшли після закриття %s)",
		"fin.draft":          "Чернетка: період відкритий, суми ще можуть зрости.",
		"fin.closed":         "Закрито %s. Хеш вмісту %s, підписано ключем %s.",
		"fin.verified":       "Підпис перевірено.",
		"fin.unverified":     "Перевірка не пройшла: %s",
		"fin.by.carrier":     "За перевізниками",
		"fin.by.category":    "За категоріями пільг",
		"fin.by.funding":     "За джерелами фінансування",
		"fin.carrier":        "Перевізник",
		"fin.category":       "Категорія",
		"fin.funding":        "Джерело фінансування",
		"fin.rides":          "Пільгові поїздки",
		"fin.fare":           "Тариф, грн",
		"fin.compensation":   "Компенсація, грн",
		"fin.total":          "Разом",
		"fin.no.lines":       "У цьому звіті немає пільгових поїздок.",
		"fin.download":       "Завантажити",
		"fin.csv":            "Компенсація за %s у CSV",
		"fin.xlsx":           "Компенсація за %s у XLSX",
		"fin.close.legend":   "Закрити період %s",
		"fin.close.intro":    "Закриття заморожує звіти періоду, обчислює їх хеш і підписує ключем HSM. Поїздки періоду, що надійдуть пізніше, потраплять до звіту-коригування наступного відкритого періоду. Скасувати закриття неможливо.",
		"fin.close.early":    "Закрити до завершення місяця",
		"fin.close.submit":   "Закрити й підписати %s",
		"fin.close.nokeys":   "Консоль запущено без ключа підпису (--keystore або --pkcs11-module), тому вона не може закривати періоди.",
		"fin.close.notyours": "Закрити період може лише керівник.",

		"me.title":       "Мої дані",
		"me.intro":       "Усе, що реєстр міської картки зберігає про вас, і хто та навіщо це переглядав.",
		"audit.title":    "Хто переглядав дані та навіщо",
		"audit.mine":     "Журнал доступу",
		"audit.none":     "Записів немає.",
		"audit.at":       "Коли",
		"audit.user":     "Хто",
		"audit.role":     "Роль",
		"audit.action":   "Що",
		"audit.purpose":  "Мета",
		"audit.record":   "Запис",
		"audit.resident": "Номер запису мешканця (необов'язково)",
		"audit.filter":   "Відібрати",
		"audit.more":     "Пізніші записи",

		"err.title": "Щось пішло не так",
		"err.400":   "Запит неправильний",
		"err.403":   "Вам не можна відкривати цю сторінку",
		"err.404":   "Не знайдено",
		"err.409":   "Це суперечить даним реєстру",
		"err.500":   "Збій консолі",
		"err.503":   "Недоступно",
		"err.id":    "Консоль записала це як помилку %s. Спробуйте ще раз і повідомте номер, якщо помилка повториться.",
		"err.csrf":  "Форма застаріла або надіслана не з цієї консолі. Поверніться, оновіть сторінку і спробуйте знову.",
		"err.role":  "Ваша роль (%s) не дозволяє цього. Зверніться до колеги з відповідною роллю.",
		"back":      "Назад",
		"home":      "Початкова сторінка",
	},
}

// translate returns the message key in lang, formatted with args. A key
// missing from the catalogue shows as itself in brackets, so that a gap
// is visible on the page and caught by the catalogue test.
func translate(lang, key string, args ...any) string {
	msg, ok := messages[lang][key]
	if !ok {
		return "[" + key + "]"
	}
	if len(args) == 0 {
		return msg
	}
	return fmt.Sprintf(msg, args...)
}
