package registry_test

import (
	"fmt"

	"github.com/citycard/transit/registry"
)

// The desk asks the lifecycle before offering an action on a card.
func ExampleCanTransition() {
	for _, to := range []registry.Status{registry.StatusActive, registry.StatusReplaced} {
		fmt.Printf("lost -> %s: %v\n", to, registry.CanTransition(registry.StatusLost, to))
	}
	fmt.Println(registry.StatusLost.Hotlisted(), registry.ReasonStolen.Status())
	// Output:
	// lost -> active: false
	// lost -> replaced: true
	// true stolen
}

// Every API route is checked against the role table before it runs.
func ExampleAllowed() {
	for _, r := range registry.Roles {
		fmt.Printf("%-10s read personal data: %-5v card events: %v\n", r,
			registry.Allowed(r, registry.ActReadPersonal), registry.Allowed(r, registry.ActCardEvents))
	}
	// Output:
	// desk       read personal data: true  card events: false
	// supervisor read personal data: true  card events: true
	// finance    read personal data: false card events: true
	// auditor    read personal data: false card events: true
	// resident   read personal data: false card events: false
	// service    read personal data: false card events: true
	// operator   read personal data: false card events: false
}
