package console

// personaliseMessages are the texts of personalising a card from the desk page.
var personaliseMessages = map[string]map[string]string{
	"uk": {
		"personalise.legend":     "Персоналізувати картку %s",
		"personalise.hint":       "Спершу покладіть чисту міську картку на зчитувач цього робочого місця; консоль чекає на неї до %d с. Не знімайте її, доки сторінка не зміниться.",
		"personalise.hint.again": "Картку вже записано. Покладіть саме її на зчитувач цього робочого місця; консоль чекає на неї до %d с, перевіряє її і, якщо власник забирає картку, робить її активною.",
		"personalise.handover":   "Власник забирає картку зараз (зробити її активною)",
		"personalise.submit":     "Персоналізувати на зчитувачі цього робочого місця",

		"personalise.done.active":       "Картку %s персоналізовано й видано власникові: вона активна. Зніміть її зі зчитувача й віддайте власникові разом із квитанцією.",
		"personalise.done.personalised": "Картку %s персоналізовано; вона залишається персоналізованою, доки її не видадуть власникові. Зніміть її зі зчитувача.",

		"personalise.title":  "Картку не персоналізовано",
		"personalise.again":  "Ще раз персоналізувати картку %s",
		"personalise.back":   "Повернутися до запису мешканця",
		"personalise.search": "Повернутися до пошуку мешканців",

		"personalise.noreader":      "Ця консоль не має налаштованого зчитувача карток, тому не може персоналізувати картки. Для персоналізації з вебконсолі консоль має працювати на комп'ютері робочого місця з його зчитувачем: запустіть її там з --reader НАЗВА (як її показує pcsc_scan) і ключами карток робочого місця (--keystore ФАЙЛ — сховище ключів емітента, або --pkcs11-module МОДУЛЬ --pkcs11-token МІТКА). Доти персоналізуйте командою transit desk personalise на комп'ютері робочого місця.",
		"personalise.unknownreader": "Консоль налаштовано на зчитувач «%s», але на цьому комп'ютері такого немає; нічого не записано, реєстр не змінено. Підключені зчитувачі: %s. Перезапустіть консоль з --reader і однією з цих назв (або підключіть потрібний зчитувач).",
		"personalise.noreaders":     "Консоль налаштовано на зчитувач «%s», але до цього комп'ютера не підключено жодного зчитувача; нічого не записано, реєстр не змінено. Підключіть зчитувач (перевірте кабель і службу pcscd) і натисніть кнопку знову.",
		"personalise.busy":          "Зчитувач зараз персоналізує іншу картку. Зачекайте, доки він завершить, і натисніть кнопку знову.",
		"personalise.nocard":        "За %d с на зчитувач не поклали жодної картки; нічого не записано, реєстр не змінено. Покладіть чисту міську картку на зчитувач і натисніть кнопку знову. Якщо картка лежала на зчитувачі, перевірте, чи зчитувач підключено.",
		"personalise.foreign":       "Картка на зчитувачі належить іншій системі; на неї нічого не записано. Заберіть її, покладіть чисту міську картку й натисніть кнопку знову.",
		"personalise.wrongcard":     "Картку на зчитувачі вже персоналізовано з іншими даними; на неї нічого не записано. Покладіть чисту картку й натисніть кнопку знову. Лише якщо цю картку треба видати повторно, спершу зітріть її (transit desk wipe).",
		"personalise.halfwiped":     "Картку на зчитувачі стерто не до кінця; на неї нічого не записано. Зітріть її ще раз (transit desk wipe) і тоді персоналізуйте, або візьміть іншу чисту картку.",
		"personalise.torn":          "Картку зняли зі зчитувача до завершення запису; у реєстрі картка %s досі має стан «%s». Покладіть ту саму картку назад і натисніть кнопку знову: запис продовжиться.",
		"personalise.notrecorded":   "Картку %s записано й перевірено, але реєстр не оновлено. Залиште ту саму картку на зчитувачі й натисніть кнопку знову: консоль побачить, що картку записано, і оновить реєстр.",
		"personalise.nokeys":        "Ключі робочого місця не дають змоги персоналізувати картки: бракує майстер-ключа картки або майстер-ключі мають різні версії; нічого не прочитано й не записано. Перезапустіть консоль зі сховищем ключів емітента (transit hsm export-role issuer) або з токеном міста.",
		"personalise.failed":        "Не вдалося персоналізувати картку %s (помилка %s, записана в журнал консолі). Перевірте, чи зчитувач підключено, залиште картку на ньому й натисніть кнопку знову: уже записану картку буде розпізнано. Якщо помилка повториться, візьміть іншу чисту картку й повідомте номер помилки.",
	},
	"en": {
		"personalise.legend":     "Personalise card %s",
		"personalise.hint":       "First put a blank city card on this desk's reader; the console waits up to %d s for it. Leave it there until the page changes.",
		"personalise.hint.again": "The card is already written. Put that same card on this desk's reader; the console waits up to %d s for it, checks it and, when the holder takes it, makes it active.",
		"personalise.handover":   "The holder takes the card now (make it active)",
		"personalise.submit":     "Personalise on this desk's reader",

		"personalise.done.active":       "Card %s is personalised and handed over: it is active. Take it off the reader and give it to the holder with the receipt.",
		"personalise.done.personalised": "Card %s is personalised; it stays personalised until it is handed over. Take it off the reader.",

		"personalise.title":  "Card not personalised",
		"personalise.again":  "Personalise card %s again",
		"personalise.back":   "Back to the resident's record",
		"personalise.search": "Back to the resident search",

		"personalise.noreader":      "This console has no card reader configured, so it cannot personalise cards. Personalisation from the web needs the console to run on the desk machine with its reader: start it there with --reader NAME (as pcsc_scan shows it) and the desk's card keys (--keystore FILE, the issuer keystore, or --pkcs11-module MODULE --pkcs11-token LABEL). Until then, personalise with transit desk personalise on the desk machine.",
		"personalise.unknownreader": "The console is set to use the card reader «%s», which this computer does not have; nothing was written and the registry is unchanged. Readers connected: %s. Restart the console with --reader and one of these names (or connect the reader it names).",
		"personalise.noreaders":     "The console is set to use the card reader «%s», but no card reader is connected to this computer; nothing was written and the registry is unchanged. Connect the reader (check its cable and the pcscd service) and press the button again.",
		"personalise.busy":          "The reader is busy personalising another card. Wait until it is done, then press the button again.",
		"personalise.nocard":        "No card was put on the reader within %d s; nothing was written and the registry is unchanged. Put a blank city card on the reader and press the button again. If a card was on the reader, check that the reader is connected.",
		"personalise.foreign":       "The card on the reader belongs to another system; nothing was written to it. Take it away, put a blank city card on the reader and press the button again.",
		"personalise.wrongcard":     "The card on the reader is already personalised with other data; nothing was written to it. Put a blank card on the reader and press the button again. Only if this card is to be re-issued, wipe it first (transit desk wipe).",
		"personalise.halfwiped":     "The card on the reader was left half-wiped; nothing was written to it. Wipe it again (transit desk wipe), then personalise it, or take another blank card.",
		"personalise.torn":          "The card left the reader before it was finished; the registry still has card %s as %s. Put the same card back on the reader and press the button again: it carries on.",
		"personalise.notrecorded":   "Card %s is written and verified, but the registry was not updated. Leave the same card on the reader and press the button again: the console finds the card done and updates the registry.",
		"personalise.nokeys":        "The desk's keys cannot personalise cards: a card master is missing, or the masters are at different versions; nothing was read or written. Restart the console with the issuer keystore (transit hsm export-role issuer) or the city's token.",
		"personalise.failed":        "Card %s could not be personalised (error %s, in the console's log). Check that the reader is connected, leave the card on it and press the button again: a card already written is found done. If it fails again, take another blank card and report the error id.",
	},
}
