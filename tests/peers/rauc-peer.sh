#!/bin/sh
# The RAUC test peer's files, shared by tests/peers/rauc.rs and scripts/bench-update.
#   rauc-peer.sh setup DIR
#     DIR gets: a test CA and its signing certificate, a second CA ("other") with one,
#     system.conf (compatible makespacelive-test, custom bootloader, two raw slots
#     rootfs.0/A and rootfs.1/B backed by 80 MiB sparse files), bootloader.sh (the custom
#     backend: primary and per-slot good/bad in state/), pre-install.sh (waits while
#     state/hold exists, to hold an install, then runs $MAKESPACELIVE_PRE_INSTALL, the
#     image's own handler, when the service was given one), bus.conf (a private system bus on DIR/bus
#     where anyone may own de.pengutronix.rauc and call it, and
#     nothing else).
#   rauc-peer.sh bundle DIR VERSION COMPATIBLE PAYLOAD OUT [other]
#     A plain-format bundle with PAYLOAD as the rootfs image, signed by the test CA's
#     signer (by the other CA's with "other").
set -eu

cmd=$1 dir=$(realpath "$2")

certify() { # NAME CN: a CA NAME-ca.pem and a signer NAME.pem/NAME.key it issued
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-keyout "$dir/$1-ca.key" -out "$dir/$1-ca.pem" -subj "/CN=$2 CA" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$dir/$1.key" -out "$dir/$1.csr" -subj "/CN=$2 signer" 2>/dev/null
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n' > "$dir/$1.ext"
	openssl x509 -req -in "$dir/$1.csr" -CA "$dir/$1-ca.pem" -CAkey "$dir/$1-ca.key" -CAcreateserial \
		-days 2 -extfile "$dir/$1.ext" -out "$dir/$1.pem" 2>/dev/null
}

case $cmd in
setup)
	mkdir -p "$dir/state" "$dir/data" "$dir/mnt"
	certify test "makespacelive test"
	certify other "someone else's"
	truncate -s 80M "$dir/A.img" "$dir/B.img"
	echo A > "$dir/state/primary"
	cat > "$dir/bootloader.sh" <<'HANDLER'
#!/bin/sh
# RAUC's custom bootloader backend; its state is in files in state/ next to it.
state="$(dirname "$0")/state"
case "$1" in
get-primary) cat "$state/primary" ;;
# As RAUC's U-Boot and barebox backends do, a new primary gets a fresh start: good.
set-primary) echo "$2" > "$state/primary.new" && mv "$state/primary.new" "$state/primary" &&
	echo good > "$state/$2.new" && mv "$state/$2.new" "$state/$2" ;;
get-state) cat "$state/$2" 2>/dev/null || echo good ;;
set-state) echo "$3" > "$state/$2.new" && mv "$state/$2.new" "$state/$2" ;;
*) echo "bootloader.sh: unknown command $1" >&2; exit 1 ;;
esac
HANDLER
	cat > "$dir/pre-install.sh" <<'HANDLER'
#!/bin/sh
# Holds an install while state/hold exists (and the directory does).
state="$(dirname "$0")/state"
touch "$state/pre-install.reached"
while [ -e "$state/hold" ]; do sleep 0.05; done
# A command line with its arguments: split on purpose.
# shellcheck disable=SC2086
[ -z "${MAKESPACELIVE_PRE_INSTALL:-}" ] || exec $MAKESPACELIVE_PRE_INSTALL
HANDLER
	chmod +x "$dir/bootloader.sh" "$dir/pre-install.sh"
	cat > "$dir/system.conf" <<CONF
[system]
compatible=makespacelive-test
bootloader=custom
bundle-formats=plain
data-directory=$dir/data
mountprefix=$dir/mnt

[keyring]
path=$dir/test-ca.pem

[handlers]
bootloader-custom-backend=$dir/bootloader.sh
pre-install=$dir/pre-install.sh

[slot.rootfs.0]
device=$dir/A.img
type=raw
bootname=A

[slot.rootfs.1]
device=$dir/B.img
type=raw
bootname=B
CONF
	cat > "$dir/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="de.pengutronix.rauc"/>
    <allow send_destination="de.pengutronix.rauc"/>
    <allow send_destination="org.freedesktop.DBus"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow send_type="signal"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
CONF
	;;
bundle)
	version=$3 compatible=$4 payload=$5 out=$6 signer=${7:-test}
	content=$(mktemp -d "$dir/bundle.XXXXXX")
	cp "$payload" "$content/rootfs.img"
	printf '[update]\ncompatible=%s\nversion=%s\n\n[bundle]\nformat=plain\n\n[image.rootfs]\nfilename=rootfs.img\n' \
		"$compatible" "$version" > "$content/manifest.raucm"
	rm -f "$out"
	rauc bundle --cert "$dir/$signer.pem" --key "$dir/$signer.key" "$content" "$out" >/dev/null
	rm -r "$content"
	;;
*)
	echo "usage: rauc-peer.sh setup DIR | bundle DIR VERSION COMPATIBLE PAYLOAD OUT [other]" >&2
	exit 2
	;;
esac
