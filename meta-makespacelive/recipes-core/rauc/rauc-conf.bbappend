# The project's system.conf (slots matching the wks layout, U-Boot with boot counters,
# state on /data) and, as keyring, the CA certificate from MAKESPACELIVE_KEYS_DIR
# (scripts/make-signing-keys makes a development one; see the README for production keys).
FILESEXTRAPATHS:prepend:makespacelive-os := "${THISDIR}/files:${MAKESPACELIVE_KEYS_DIR}:"

SRC_URI:remove:makespacelive-os = "file://system.conf"
SRC_URI:append:makespacelive-os = " file://system.conf.in"

RAUC_KEYRING_FILE:makespacelive-os = "ca.cert.pem"

do_install:prepend:makespacelive-os() {
    sed -e 's|@@MACHINE@@|${MACHINE}|g' \
        -e 's|@@MAKESPACELIVE_DISK@@|${MAKESPACELIVE_DISK}|g' \
        -e 's|@@MAKESPACELIVE_BOOT_ATTEMPTS@@|${MAKESPACELIVE_BOOT_ATTEMPTS}|g' \
        ${UNPACKDIR}/system.conf.in > ${UNPACKDIR}/system.conf
}
