package provision_test

import (
	"encoding/json"
	"testing"

	"github.com/uias/uias/services/sync/provision"
)

// TestObjectField: a field's string, number or boolean value as text; ""
// for any other value, a missing field, no object or data that is not a
// JSON object.
func TestObjectField(t *testing.T) {
	o := &provision.Object{Data: json.RawMessage(`{"org_id":"o1","n":42.5,"on":true,"x":{"a":1},"nil":null,"s":"a\"b"}`)}
	for name, want := range map[string]string{"org_id": "o1", "n": "42.5", "on": "true", "x": "", "nil": "", "s": `a"b`, "gone": ""} {
		if got := o.Field(name); got != want {
			t.Errorf("Field(%q) = %q, want %q", name, got, want)
		}
	}
	for _, data := range []string{`null`, `[1]`, `"s"`, `{"org_id":`, ``} {
		if got := (&provision.Object{Data: json.RawMessage(data)}).Field("org_id"); got != "" {
			t.Errorf("Field of %q = %q", data, got)
		}
	}
	var none *provision.Object
	if got := none.Field("org_id"); got != "" {
		t.Errorf("Field of no object = %q", got)
	}
}
