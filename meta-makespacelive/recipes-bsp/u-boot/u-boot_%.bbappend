# U-Boot's environment location for libubootenv (fw_printenv/fw_setenv, which RAUC's
# uboot backend uses) on every machine, and on qemuarm64 the A/B boot script too
# (on the Pi, rpi-u-boot-scr builds it from the same template).
FILESEXTRAPATHS:prepend:makespacelive-os := "${THISDIR}/files:"

SRC_URI:append:makespacelive-os = " file://fw_env.config"
SRC_URI:append:makespacelive-os:qemuarm64 = " file://boot.cmd.in"

UBOOT_ENV:makespacelive-os:qemuarm64 = "boot"
UBOOT_ENV_SUFFIX:makespacelive-os:qemuarm64 = "scr"

do_configure:prepend:makespacelive-os:qemuarm64() {
    sed -e 's|@@KERNEL_IMAGETYPE@@|${KERNEL_IMAGETYPE}|g' \
        -e 's|@@KERNEL_BOOTCMD@@|booti|g' \
        -e 's|@@BOOT_MEDIA@@|virtio|g' \
        -e 's|@@FDT_ADDR@@|${fdtcontroladdr}|g' \
        -e 's|@@EXTRA_BOOTARGS@@|console=ttyAMA0|g' \
        -e 's|@@MAKESPACELIVE_DISK@@|${MAKESPACELIVE_DISK}|g' \
        -e 's|@@MAKESPACELIVE_BOOT_ATTEMPTS@@|${MAKESPACELIVE_BOOT_ATTEMPTS}|g' \
        "${UNPACKDIR}/boot.cmd.in" > "${UNPACKDIR}/boot.cmd"
}

# QEMU's second flash bank, where U-Boot keeps its environment (QB_OPT_APPEND in
# kas/qemuarm64.yml hands it to QEMU as pflash1). Blank flash reads as 0xff.
do_deploy:append:makespacelive-os:qemuarm64() {
    dd if=/dev/zero bs=1M count=64 | tr '\000' '\377' > ${DEPLOYDIR}/u-boot-env.img
}
