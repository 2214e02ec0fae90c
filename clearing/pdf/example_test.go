package pdf_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/citycard/transit/clearing/pdf"
)

func ExampleWrite() {
	var buf bytes.Buffer
	err := pdf.Write(&buf, pdf.Document{
		Title: "Компенсація за пільгові поїздки, 2026-11",
		Lang:  "uk",
		Blocks: []pdf.Block{
			pdf.Paragraph("Період відкритий: суми ще можуть зрости."),
			pdf.Table{
				Columns: []pdf.Column{{Title: "Перевізник"}, {Title: "Компенсація, грн", Right: true}},
				Rows:    [][]string{{"ATP-1", "85.00"}, {"Київпастранс", "50.00"}},
				Foot:    []string{"Разом", "135.00"},
			},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(buf.Bytes()[:5]))
	// Output: %PDF-
}
