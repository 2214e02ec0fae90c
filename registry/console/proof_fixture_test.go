package console_test

import (
	"time"

	cstore "github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/storetest"
)

// fixtureTariff is the version of the tariff clearing re-rates the
// fixture's rides with (fixtureTariffFiles); the fixture's benefit rides
// name it.
const fixtureTariff = 7

// fixtureTariffFiles prices the fixture's rides as clearing re-rates
// them, a close paying only what it proves: buses of ATP-1, ATP-2 and
// ATP-3 at 15.00, trams of Київпастранс at 8.00; category 11
// (pensioners) rides free on the city's money, category 12 (veterans)
// free with a flat 20.00 from the state.
var fixtureTariffFiles = map[string]string{
	"x_tariff.txt": "version,currency,timezone,passback_seconds\n7,UAH,Europe/Kyiv,0\n",
	"networks.txt": "network_id,network_name\nbus,Bus\ntram,Tram\n",
	"x_carriers.txt": "carrier_id,carrier_name,carrier_code,carrier_group,network_id\n" +
		"ATP-1,ATP-1,1,0,bus\nATP-2,ATP-2,2,0,bus\nATP-3,ATP-3,3,0,bus\n" + kyivCarrier + ",Київпастранс,4,1,tram\n",
	"fare_products.txt": "fare_product_id,fare_product_name,amount,currency\nbus,Bus,15.00,UAH\ntram,Tram,8.00,UAH\n",
	"fare_leg_rules.txt": "leg_group_id,network_id,from_timeframe_group_id,fare_product_id\n" +
		"municipal,bus,,bus\nmunicipal,tram,,tram\n",
	"rider_categories.txt": "rider_category_id,rider_category_name,is_default_fare_category,eligibility_url\n" +
		"adult,Adult,1,\npensioner,Pensioner,0,\nveteran,Veteran,0,\n",
	"x_benefits.txt": "rider_category_id,card_category,discount_pct,monthly_rides,funding_source,compensation_amount,network_ids,carrier_ids\n" +
		"pensioner,11,100,0,city,,,\nveteran,12,100,0,state,20.00,,\n",
}

// entitled is a registry record of one benefit of a card, for clearing's
// copy.
func entitled(category uint16, from, to, funding string) cstore.RecordEntitlement {
	return cstore.RecordEntitlement{Category: category, ValidFrom: from, ValidTo: to, Funding: funding}
}

// prove gives clearing the fixture's tariff and the registry's records
// of cards, complete as of long after the fixture's months, so that
// re-rating proves the fixture's honest claims.
func (f *fixture) prove(recs []cstore.CardRecord) {
	f.t.Helper()
	if _, err := f.clr.AddTariff(f.ctx, storetest.TariffFileOf(f.t, fixtureTariff, fixtureTariffFiles)); err != nil {
		f.t.Fatal(err)
	}
	feed, err := f.clr.Feed(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	feed.Next++
	feed.AsOf = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := f.clr.SetCardRecords(f.ctx, recs, feed); err != nil {
		f.t.Fatal(err)
	}
}
