# dm-verity, squashfs and nbd for RAUC verity bundles; MTD for U-Boot's environment
# in QEMU's flash.
FILESEXTRAPATHS:prepend:makespacelive := "${THISDIR}/files:"
SRC_URI:append:makespacelive = " file://makespacelive.cfg"
SRC_URI:append:makespacelive:qemuarm64 = " file://qemu-flash.cfg"
