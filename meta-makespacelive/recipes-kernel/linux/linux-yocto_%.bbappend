# dm-verity, squashfs and nbd for RAUC verity bundles; MTD for U-Boot's environment
# in QEMU's flash.
FILESEXTRAPATHS:prepend := "${THISDIR}/files:"
SRC_URI += "file://makespacelive.cfg"
SRC_URI:append:qemuarm64 = " file://qemu-flash.cfg"
