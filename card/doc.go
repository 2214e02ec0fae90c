// Package card describes the city card: its DESFire EV1 applications, keys,
// files and access rights as data (see CityCard), and the typed content of
// every file with fixed-size binary codecs.
//
// The package is a pure core: no I/O, no clock. Personalisation code and the
// virtual card walk the Layout; the validator, desk and top-up terminals
// encode and decode file contents with the types here. See LAYOUT.md for the
// reasoning behind the layout and the tap's APDU budget.
package card
