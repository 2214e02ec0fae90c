package city_test

// fullCards is how many riders of the truth week carry virtual cards
// through the real validators; the rest of the city rides fast.
const fullCards = 250

// raceScale shrinks the truth week under the race detector, which slows
// the pure-Go SQLite journals and the card crypto several times over: the
// week keeps every fault and a month's close, with fewer riders.
const raceScale = 0.5
