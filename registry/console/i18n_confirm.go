package console

// confirmMessages are the texts of the confirmation pages (confirm.go)
// and the resident's own block.
var confirmMessages = map[string]map[string]string{
	"uk": {
		"confirm.title":          "Підтвердіть дію",
		"confirm.whom":           "Кого це стосується: %s.",
		"confirm.cancel":         "Ні, повернутися",
		"confirm.noresident":     "Форма не називає мешканця, чию картку змінити. Відкрийте запис мешканця і скористайтеся формою там.",
		"confirm.block.what":     "Картку %s буде заблоковано з причиною «%s».",
		"confirm.block.final":    "Після наступного стоп-списку (до хвилини) валідатори відмовлятимуть їй. Розблокувати її неможливо: далі лише заміна з перенесенням залишку.",
		"confirm.block.undo":     "Після наступного стоп-списку (до хвилини) валідатори відмовлятимуть їй, доки оператор її не розблокує.",
		"confirm.block.button":   "Так, заблокувати картку %s",
		"confirm.replace.what":   "Картку %s буде замінено новою; на нову картку буде перенесено %s грн (%s).",
		"confirm.replace.after":  "Стара картка перестане діяти назавжди. Нову буде замовлено, її треба буде персоналізувати й видати.",
		"confirm.replace.button": "Так, замінити картку %s",
		"confirm.end.what":       "Пільгу «%s» буде припинено: останній день дії %s (зараз діє до %s).",
		"confirm.end.after":      "З %s поїздки за цією пільгою вже не будуть пільговими. Продовжити її можна лише новим наданням.",
		"confirm.end.now":        "Пільга припиняється одразу: поїздки за нею вже не будуть пільговими. Продовжити її можна лише новим наданням.",
		"confirm.end.button":     "Так, припинити пільгу",
		"block.reason.bad":       "Оберіть причину блокування зі списку.",
	},
	"en": {
		"confirm.title":          "Confirm the action",
		"confirm.whom":           "Whom it concerns: %s.",
		"confirm.cancel":         "No, go back",
		"confirm.noresident":     "The form names no resident whose card to change. Open the resident's record and use the form there.",
		"confirm.block.what":     "Card %s will be blocked, reason: %s.",
		"confirm.block.final":    "After the next hotlist (within a minute) validators refuse it. It cannot be unblocked: only a replacement, with the balance carried, follows.",
		"confirm.block.undo":     "After the next hotlist (within a minute) validators refuse it, until a desk operator unblocks it.",
		"confirm.block.button":   "Yes, block card %s",
		"confirm.replace.what":   "Card %s will be replaced by a new one; %s UAH will be carried to the new card (%s).",
		"confirm.replace.after":  "The old card stops for good. The new one is ordered; it must be personalised and handed over.",
		"confirm.replace.button": "Yes, replace card %s",
		"confirm.end.what":       "The %s entitlement will end: its last day is %s (it now runs until %s).",
		"confirm.end.after":      "From %s rides under it are no longer benefit rides. Only a new grant brings it back.",
		"confirm.end.now":        "The entitlement ends at once: rides under it are no longer benefit rides. Only a new grant brings it back.",
		"confirm.end.button":     "Yes, end the entitlement",
		"block.reason.bad":       "Choose a reason for the block from the list.",
	},
}
