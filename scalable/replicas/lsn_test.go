package replicas

import "testing"

func TestParseLSN(t *testing.T) {
	for text, want := range map[string]lsn{
		"0/0":               0,
		"0/16B3748":         0x16B3748,
		"1/0":               1 << 32,
		"FFFFFFFF/FFFFFFFF": 1<<64 - 1,
	} {
		got, err := parseLSN(text)
		if err != nil || got != want {
			t.Errorf("parseLSN(%q) = %v, %v; want %v", text, got, err, want)
		}
	}
	for _, text := range []string{"", "0", "0/", "/0", "0/G", "1/2/3", "100000000/0", "-1/0"} {
		if _, err := parseLSN(text); err == nil {
			t.Errorf("parseLSN(%q): no error", text)
		}
	}
}
