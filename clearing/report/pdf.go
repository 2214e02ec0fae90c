package report

import (
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/citycard/transit/clearing/pdf"
	"github.com/citycard/transit/clearing/register"
	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
)

// WriteCompensationPDF writes c as the statement document filed by the
// city and sent to carriers, in Ukrainian with English beside it: the
// period and whether it is closed, each of the period's statements sts
// (as Store.Statements returns them; may be nil) with when and by whom it
// was closed and its seal (content hash, signing key and fingerprint,
// signature), the lines with categories and funding by name and each
// carrier's subtotal, and approval lines. With c.Carrier, or c.PerCarrier
// for each carrier on pages of its own, it gives the carrier's legal
// details from c.Names, which must then list the carrier.
func WriteCompensationPDF(w io.Writer, c Compensation, sts []store.Statement) error {
	doc, err := CompensationDocument(c, sts)
	if err != nil {
		return err
	}
	return pdf.Write(w, doc)
}

// CompensationDocument is the document WriteCompensationPDF writes, for
// a caller that lays it out itself (pdf.WriteLayout).
func CompensationDocument(c Compensation, sts []store.Statement) (pdf.Document, error) {
	for _, st := range sts {
		if st.Period != c.Period {
			return pdf.Document{}, fmt.Errorf("report: a statement of %s cannot go into the PDF of %s", st.Period, c.Period)
		}
	}
	carriers := []string{c.Carrier}
	if c.Carrier == "" && c.PerCarrier {
		carriers = nil
		for _, g := range groups(c.Lines) {
			carriers = append(carriers, g[0].Carrier)
		}
		if len(carriers) == 0 {
			return pdf.Document{}, fmt.Errorf("report: %s has no carrier with rides to give a page of its own", c.Period)
		}
	}
	for _, id := range carriers {
		if id == "" {
			continue
		}
		if _, ok := c.Names.Carrier(id); !ok {
			return pdf.Document{}, fmt.Errorf("report: carrier %q is not in the finance register: a carrier's statement needs its legal details (add it to %s)", id, register.CarriersFile)
		}
	}
	doc := pdf.Document{Title: "Компенсація за пільгові поїздки / Compensation for benefit rides, " + c.Period, Lang: "uk",
		Created: created(c.Created), Landscape: c.Detail.Route || c.Detail.Day}
	for i, id := range carriers {
		part := c
		if id != "" {
			part.Carrier = id
			part.Lines = nil
			part.Total = store.Line{}
			for _, l := range c.Lines {
				if l.Carrier == id {
					part.Lines = append(part.Lines, l)
					part.Total.Add(l)
				}
			}
		}
		if i > 0 {
			doc.Blocks = append(doc.Blocks, pdf.PageBreak{}, pdf.Heading(doc.Title))
		}
		doc.Blocks = append(doc.Blocks, compensationBlocks(part, sts)...)
	}
	return doc, nil
}

// compensationBlocks are the blocks of one statement document: all
// carriers, or c.Carrier's.
func compensationBlocks(c Compensation, sts []store.Statement) []pdf.Block {
	var out []pdf.Block
	add := func(b ...pdf.Block) { out = append(out, b...) }
	add(pdf.Paragraph("Період / period: " + c.Period + "   Складено / made: " + LocalTime(created(c.Created), c.loc()) + " (" + c.loc().String() + ")"))
	if c.Carrier != "" {
		add(pdf.Heading("Перевізник / Carrier"))
		if k, ok := c.Names.Carrier(c.Carrier); ok {
			add(pdf.Paragraph(fmt.Sprintf("%s\nКод ЄДРПОУ / EDRPOU: %s\nАдреса / address: %s\nIBAN: %s\nДоговір / contract: № %s від / of %s\nКод у системі / carrier id: %s",
				k.LegalName, k.EDRPOU, k.Address, register.GroupIBAN(k.IBAN), k.Contract, k.ContractDate.Format("02.01.2006"), k.ID)))
		} else {
			add(pdf.Paragraph("Код у системі / carrier id: " + c.Carrier))
		}
	}
	if c.Category != "" {
		add(pdf.Paragraph("Категорія / category: " + c.Names.CategoryName("uk", c.Category) + " / " + c.Names.CategoryName("en", c.Category) + " (" + c.Category + ")"))
	}
	if c.Closed {
		add(pdf.Paragraph("Період закрито, суми остаточні. / The period is closed: the figures are final."))
	} else {
		add(pdf.Paragraph("Період відкритий, це чернетка: суми ще можуть зрости. / The period is open, this is a draft: the figures may still grow."))
	}
	if len(sts) > 0 {
		add(pdf.Heading("Звіти періоду та їхні підписи / Statements of the period and their seals"))
	}
	for _, st := range sts {
		name := "Звіт / statement " + st.Period
		if st.Adjusts != "" {
			name = fmt.Sprintf("Коригування %s, враховане в %s / adjustment of %s booked in %s", st.Adjusts, st.Period, st.Adjusts, st.Period)
		}
		if !st.Closed {
			add(pdf.Paragraph(name + ": чернетка / draft"))
			continue
		}
		fp := st.KeyFingerprint
		if fp == "" {
			fp = "не записано / not recorded"
		}
		add(pdf.Paragraph(fmt.Sprintf("%s: закрито й підписано / closed and signed %s (%s), закрив / closed by: %s\n"+
			"Хеш вмісту (SHA-256) / content hash: %x\nКлюч підпису / signing key: %s, відбиток / fingerprint: %s\nПідпис (Ed25519) / signature: %s%s",
			name, LocalTime(st.ClosedAt, c.loc()), c.loc().String(), orUnknown(st.ClosedBy), st.Hash, st.KeyRef, statement.GroupFingerprint(fp), groupHex(st.Signature),
			partLine(&st, c.Carrier))))
	}
	add(pdf.Heading("Рядки / Lines"))
	if len(c.Lines) == 0 {
		add(pdf.Paragraph("Немає пільгових поїздок. / " + emptyLine(c)))
	} else {
		add(pdf.Paragraph("Суми в гривнях, точні суми цілих копійок. / Amounts in hryvnias, exact sums of integer kopiyky."))
		add(linesTables(c)...)
	}
	if c.Detail.Category && c.Carrier == "" {
		add(pdf.Heading("За перевізниками / Per carrier"))
		t := pdf.Table{Columns: []pdf.Column{{Title: "Перевізник / carrier"}, {Title: "Пільгові поїздки / benefit rides", Right: true},
			{Title: "Тариф, грн / fare, UAH", Right: true}, {Title: "Компенсація, грн / compensation, UAH", Right: true}}}
		for _, l := range PerCarrier(c.Lines) {
			name := l.Carrier
			if n := c.Names.CarrierName(l.Carrier); n != l.Carrier {
				name = n + " (" + l.Carrier + ")"
			}
			t.Rows = append(t.Rows, []string{name, fmt.Sprint(l.Rides), UAHComma(l.FareKop), UAHComma(l.CompensationKop)})
		}
		t.Foot = []string{"РАЗОМ / TOTAL", fmt.Sprint(c.Total.Rides), UAHComma(c.Total.FareKop), UAHComma(c.Total.CompensationKop)}
		add(t)
	}
	add(pdf.Heading("Погодження / Approval"))
	signer := func(role string) pdf.Block {
		return pdf.Paragraph(role + "\n\n______________________   ______________________   «____» ____________ 20___\n(підпис / signature)              (ПІБ / name)")
	}
	add(signer("Склав (фінансовий відділ) / Prepared by (finance)"))
	add(signer("Затверджую (керівник) / Approved by (head)"))
	if c.Carrier != "" {
		add(signer("Від перевізника / For the carrier: " + c.Names.CarrierName(c.Carrier)))
	}
	return out
}

// linesTables are the lines of c: one table of carriers; or, split by
// category, a table per carrier (named above its head on every page it
// runs onto) closed by its subtotal, after a key to the names of the
// categories and funding sources in both languages, so that a row names
// them in Ukrainian alone and stays one line.
func linesTables(c Compensation) []pdf.Block {
	if !c.Detail.Category {
		return []pdf.Block{linesTable(c, c.Lines, "", "РАЗОМ / TOTAL")}
	}
	var out []pdf.Block
	if key := namesKey(c); key != nil {
		out = append(out, *key)
	}
	gs := groups(c.Lines)
	for _, g := range gs {
		id := g[0].Carrier
		title := "Перевізник / carrier: " + id
		if n := c.Names.CarrierName(id); n != id {
			title = "Перевізник / carrier: " + n + " (" + id + ")"
		}
		foot := "Разом / subtotal " + id
		if len(gs) == 1 && c.Carrier != "" {
			foot = "РАЗОМ / TOTAL"
		}
		out = append(out, linesTable(c, g, title, foot))
	}
	return out
}

// namesKey is the key to the category and funding names of c's lines,
// or nil when the register names none of them.
func namesKey(c Compensation) *pdf.Table {
	t := pdf.Table{Title: "Категорії та джерела фінансування / Categories and funding sources",
		Columns: []pdf.Column{{Title: "Код / code", NoWrap: true}, {Title: "Українською"}, {Title: "In English"}}}
	seen := map[string]bool{}
	named := false
	var cats, funds []string
	for _, l := range c.Lines {
		if !seen["c"+l.Category] {
			seen["c"+l.Category] = true
			cats = append(cats, l.Category)
		}
		if !seen["f"+l.Funding] {
			seen["f"+l.Funding] = true
			funds = append(funds, l.Funding)
		}
	}
	slices.Sort(cats)
	slices.Sort(funds)
	for _, code := range cats {
		if c.Names.HasCategory(code) {
			named = true
			t.Rows = append(t.Rows, []string{code, c.Names.CategoryName("uk", code), c.Names.CategoryName("en", code)})
		}
	}
	for _, code := range funds {
		if uk := register.FundingName("uk", code); uk != code {
			t.Rows = append(t.Rows, []string{code, uk, register.FundingName("en", code)})
		}
	}
	if !named && len(t.Rows) == 0 {
		return nil
	}
	return &t
}

// linesTable is a table of lines, closed by their sum labelled foot. A
// carrier's table (title set) has no carrier column.
func linesTable(c Compensation, lines []store.Line, title, foot string) pdf.Table {
	var cols []column
	for _, col := range columns(c, true) {
		if title != "" && col.head == "carrier" {
			continue
		}
		cols = append(cols, col)
	}
	var sum store.Line
	for _, l := range lines {
		sum.Add(l)
	}
	t := pdf.Table{Title: title, Foot: make([]string, len(cols))}
	for i, col := range cols {
		t.Columns = append(t.Columns, pdf.Column{Title: col.title, Right: col.right, NoWrap: col.head == "day" || col.head == "adjusts"})
		switch {
		case i == 0:
			t.Foot[i] = foot
		case col.right:
			t.Foot[i] = pdfText(col, sum)
		}
	}
	for _, l := range lines {
		row := make([]string, len(cols))
		for i, col := range cols {
			switch col.head {
			case "category":
				row[i] = categoryLabel(c.Names, "uk", l.Category)
			case "funding":
				row[i] = register.FundingName("uk", l.Funding)
			case "carrier":
				row[i] = l.Carrier
				if n := c.Names.CarrierName(l.Carrier); n != l.Carrier {
					row[i] = n + " (" + l.Carrier + ")"
				}
			default:
				row[i] = pdfText(col, l)
			}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// partLine names carrier's part of a form 3 statement st by the digest
// the signature covers, so that the carrier can match its document with
// its bundle; "" for an earlier form, a document of every carrier, or a
// statement read without its seed.
func partLine(st *store.Statement, carrier string) string {
	if carrier == "" || st.Form < 3 || len(st.PartSeed) != statement.SeedSize {
		return ""
	}
	for _, p := range statement.Parts(st) {
		if p.Carrier == carrier {
			return fmt.Sprintf("\nЧастка перевізника (SHA-256) / the carrier's part: %x", p.Digest())
		}
	}
	return "\nЧастка перевізника / the carrier's part: немає рядків / no lines"
}

// groupHex writes b in hex, in groups of 16 digits, so that a long
// signature wraps between groups rather than mid-way.
func groupHex(b []byte) string {
	h := hex.EncodeToString(b)
	var parts []string
	for i := 0; i < len(h); i += 16 {
		parts = append(parts, h[i:min(i+16, len(h))])
	}
	return strings.Join(parts, " ")
}

// pdfText is a cell as the Ukrainian document writes it: DD.MM.YYYY
// days, decimal commas.
func pdfText(col column, l store.Line) string {
	switch col.head {
	case "day":
		return Date(l.Day)
	case "fare_uah":
		return UAHComma(l.FareKop)
	case "compensation_uah":
		return UAHComma(l.CompensationKop)
	}
	return strings.TrimSpace(col.text(l))
}
