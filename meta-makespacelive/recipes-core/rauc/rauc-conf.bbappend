# The project's system.conf (rendered from the layout values) and, as keyring, the
# project's CA certificate from MAKESPACELIVE_KEYS_DIR (scripts/make-signing-keys makes a
# development one; see the README for production keys). Without it the build stops:
# meta-rauc would otherwise fall back to its own demo CA with only a warning, and the
# boxes would accept nothing but demo-signed bundles.
FILESEXTRAPATHS:prepend:makespacelive-os := "${THISDIR}/files:"

inherit_defer ${@d.getVar("MAKESPACELIVE_TEMPLATE_CLASS") or ""}

SRC_URI:remove:makespacelive-os = "file://system.conf"
SRC_URI:append:makespacelive-os = " file://system.conf.in"
MAKESPACELIVE_TEMPLATES:makespacelive-os = "system.conf.in:system.conf"

# From the keys directory itself, never from a layer's files/ directory: nothing of
# meta-rauc's can stand in for it.
# (The distro sets RAUC_KEYRING_FILE to the full path for the bundle; this recipe wants
# the file name it installs.)
RAUC_KEYRING_FILE:makespacelive-os = "ca.cert.pem"
RAUC_KEYRING_URI:makespacelive-os = "file://${MAKESPACELIVE_KEYS_DIR}/ca.cert.pem"

# nooelint: oelint.vars.noncoreoverride - returns at once unless the distro is makespacelive-os
python makespacelive_require_keyring() {
    if d.getVar('DISTRO') != 'makespacelive-os':
        return
    keyring = os.path.join(d.getVar('MAKESPACELIVE_KEYS_DIR'), 'ca.cert.pem')
    if not os.path.isfile(keyring):
        bb.fatal("The project's RAUC keyring %s does not exist. Run scripts/make-signing-keys "
                 "(development keys) or put the production CA certificate there, and set "
                 "MAKESPACELIVE_KEYS_DIR if the keys are elsewhere." % keyring)
}
makespacelive_require_keyring[doc] = "Stops the build when the project's RAUC keyring is missing"
do_fetch[prefuncs] += "makespacelive_require_keyring"
