# The project's system.conf (rendered from the layout values) and, as keyring, the
# project's CA certificate from MAKESPACELIVE_KEYS_DIR (scripts/make-signing-keys makes a
# development one; see docs/firmware.md for production keys). Without it the build stops:
# meta-rauc would otherwise fall back to its own demo CA with only a warning, and the
# boxes would accept nothing but demo-signed bundles.
FILESEXTRAPATHS:prepend:makespacelive-os := "${THISDIR}/files:"

inherit_defer ${@d.getVar("MAKESPACELIVE_TEMPLATE_CLASS") or ""}

SRC_URI:remove:makespacelive-os = "file://system.conf"
SRC_URI:append:makespacelive-os = " file://system.conf.in"
MAKESPACELIVE_TEMPLATES:makespacelive-os = "system.conf.in:system.conf"

# The keyring by its file name, found in the keys directory: rauc-conf.bb installs
# ${UNPACKDIR}/${RAUC_KEYRING_FILE}, and bitbake's unpack keeps the directories of a
# file:// path under UNPACKDIR (a full path would land in UNPACKDIR/<that path>).
# The keys directory comes first in FILESPATH; meta-rauc's demo ca.cert.pem further down
# is never reached, because the check below stops the build before the fetch.
# (The distro sets RAUC_KEYRING_FILE to the full path for the bundle; this recipe wants
# the file name it installs.)
FILESEXTRAPATHS:prepend:makespacelive-os := "${MAKESPACELIVE_KEYS_DIR}:"
RAUC_KEYRING_FILE:makespacelive-os = "ca.cert.pem"
RAUC_KEYRING_URI:makespacelive-os = "file://${RAUC_KEYRING_FILE}"

# nooelint: oelint.vars.noncoreoverride - runs only under the distro (MAKESPACELIVE_KEYRING_CHECK)
python makespacelive_require_keyring() {
    keyring = os.path.join(d.getVar('MAKESPACELIVE_KEYS_DIR'), d.getVar('RAUC_KEYRING_FILE'))
    if not os.path.isfile(keyring):
        bb.fatal("The project's RAUC keyring %s does not exist. Run scripts/make-signing-keys "
                 "(development keys) or put the production CA certificate there, and set "
                 "MAKESPACELIVE_KEYS_DIR if the keys are elsewhere." % keyring)
}
makespacelive_require_keyring[doc] = "Stops the build when the project's RAUC keyring is missing"
# The distro names the check in MAKESPACELIVE_KEYRING_CHECK; without it the flag is empty.
# bitbake expands the prefuncs flag before it adds its names to do_fetch's signature, so a
# build without makespacelive-os keeps meta-rauc's signatures (yocto-check-layer's
# test_signatures).
do_fetch[prefuncs] += "${@d.getVar('MAKESPACELIVE_KEYRING_CHECK') or ''}"
