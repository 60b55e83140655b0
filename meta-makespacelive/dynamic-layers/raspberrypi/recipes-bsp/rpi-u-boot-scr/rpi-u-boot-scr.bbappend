# The A/B boot script with boot counters (one template with QEMU's, in
# recipes-bsp/u-boot/files) instead of meta-raspberrypi's single-root one.
FILESEXTRAPATHS:prepend:makespacelive-os := "${THISDIR}/../../../../recipes-bsp/u-boot/files:"

do_compile:prepend:makespacelive-os() {
    sed -i -e 's|@@MAKESPACELIVE_BOOT_ATTEMPTS@@|${MAKESPACELIVE_BOOT_ATTEMPTS}|g' \
        -e 's|@@MAKESPACELIVE_DISK@@|${MAKESPACELIVE_DISK}|g' \
        -e 's|@@FDT_ADDR@@|${fdt_addr}|g' \
        -e 's|@@EXTRA_BOOTARGS@@||g' \
        "${UNPACKDIR}/boot.cmd.in"
}
