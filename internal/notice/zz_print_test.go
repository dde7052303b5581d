package notice_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/breachflow/breachflow/internal/notice"
)

func TestZZPrint(t *testing.T) {
	if os.Getenv("ZZ") == "" {
		t.Skip()
	}
	d := validDraft()
	d.Phase = notice.Phase{Number: 3, Kind: os.Getenv("ZZKIND")}
	if d.Phase.Kind == "" {
		d.Phase = notice.Phase{}
	} else {
		d.Fields.WhatsNew = "We now know the number of records.\nThe bucket was deleted."
	}
	if d.Phase.Kind != notice.PhaseFinal {
		d.Fields.ApproxRecords = 0
		d.Fields.NotYetKnown = []string{"approx_records"}
	}
	d.Sender.Signature = "Anna Bianchi\nHead of Security"
	r := recipient(os.Getenv("ZZ"))
	r.Facts = notice.TenantFacts{Services: []string{"Backup", "Storage"}, DataRegions: []string{"eu-south-1"}, DataSubjects: 1, Records: 12345}
	out, err := notice.RenderFor(d, r)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(out.Subject)
	fmt.Println(out.Text)
	if os.Getenv("ZZHTML") != "" {
		fmt.Println(out.HTML)
	}
}
