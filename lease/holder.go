package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wharf-mirror/wharf/cache/records"
)

// Holder reads who holds the lease name, as its record says (for people:
// an error message, a status line), and when it was last renewed by the
// holder's clock; "" when nobody does.
func Holder(ctx context.Context, store records.Store, name string) (holder string, renewed string, err error) {
	rec, err := store.Get(ctx, "leases/"+name)
	if errors.Is(err, records.ErrNotFound) {
		return "", "", nil
	} else if err != nil {
		return "", "", err
	}
	var h holding
	if err := json.Unmarshal(rec.Data, &h); err != nil {
		return "", "", fmt.Errorf("lease %s: %w", name, err)
	}
	return h.Holder, h.Renewed.Format("15:04:05Z07:00"), nil
}
