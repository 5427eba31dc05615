package transport

import "net/netip"

// Classify says which of the site's own networks ip belongs to, as a word
// for error messages ("loopback", "private", "link-local", …), or "" for
// an address on the public internet.
//
// These are the addresses an upstream on the internet has no business
// sending wharf to: wharf itself and its host (loopback, unspecified), the
// cloud metadata service and link-local neighbours (169.254.0.0/16,
// fe80::/10), the site's networks (RFC 1918, RFC 4193 ULA, the deprecated
// site-local fec0::/10, carrier-grade NAT 100.64.0.0/10), and addresses
// that are not one host (multicast, broadcast, reserved). IPv4-mapped
// IPv6 (::ffff:127.0.0.1) and NAT64 (64:ff9b::/96) forms are judged by the
// IPv4 address they carry.
func Classify(ip netip.Addr) string {
	if !ip.IsValid() {
		return "invalid"
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() && nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[12:]))
	}
	switch {
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsMulticast():
		return "multicast"
	case ip.IsPrivate():
		return "private"
	}
	for _, r := range reserved {
		if r.prefix.Contains(ip) {
			return r.class
		}
	}
	return ""
}

// nat64 is the well-known NAT64 prefix (RFC 6052): 64:ff9b::a.b.c.d
// reaches IPv4 a.b.c.d through the site's translator.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// reserved lists the internal ranges that netip.Addr has no method for.
var reserved = []struct {
	prefix netip.Prefix
	class  string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},        // "this network" (RFC 1122)
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT)"}, // RFC 6598
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved"},        // IETF protocol assignments (RFC 6890)
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved"},       // benchmarking (RFC 2544), used inside sites
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"}, // limited broadcast
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},         // RFC 1112
	{netip.MustParsePrefix("fec0::/10"), "private"},            // deprecated site-local (RFC 3879)
	{netip.MustParsePrefix("::/96"), "reserved"},               // IPv4-compatible IPv6, deprecated (RFC 4291)
	{netip.MustParsePrefix("100::/64"), "reserved"},            // discard-only (RFC 6666)
}
