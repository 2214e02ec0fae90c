//go:build !race

package city_test

const raceDetector = false
