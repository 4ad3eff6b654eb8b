package ticket

import (
	"fmt"
	"testing"
)

func TestAddUseKeepsTheLatestTicketsPerService(t *testing.T) {
	var list []ServiceUse
	for i := range 10 {
		list = addUse(list, ServiceUse{Service: "a", Ticket: fmt.Sprint("a", i)})
		list = addUse(list, ServiceUse{Service: "b", Ticket: fmt.Sprint("b", i)})
	}
	if len(list) != 2*MaxTicketsPerService {
		t.Fatalf("list: %+v", list)
	}
	for _, u := range list {
		if u.Ticket < u.Service+"6" {
			t.Errorf("kept an old ticket %s", u.Ticket)
		}
	}
	for i := range 100 {
		list = addUse(list, ServiceUse{Service: fmt.Sprint("s", i), Ticket: "x"})
	}
	if len(list) != MaxServicesPerSession || list[len(list)-1].Service != "s99" {
		t.Fatalf("cap: %d %+v", len(list), list[len(list)-1])
	}
}
