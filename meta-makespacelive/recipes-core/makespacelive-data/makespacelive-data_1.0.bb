SUMMARY = "The /data partition of the makespacelive appliance: grown, laid out, checked"
DESCRIPTION = "Grows the data partition to the card on first boot, creates the \
               directories that live there (settings, NetworkManager keyfiles, RAUC state, SSH host \
               keys, machine-id) and marks the booted RAUC slot good once the service is up."
HOMEPAGE = "https://github.com/makespacelive/makespacelive"
BUGTRACKER = "https://github.com/makespacelive/makespacelive/issues"
SECTION = "base"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COREBASE}/meta/COPYING.MIT;md5=3da9cfbcb788c80a0384361b4de20420"

SRC_URI = "\
    file://makespacelive-grow-data \
    file://makespacelive-grow-data.service \
    file://makespacelive-data-layout \
    file://makespacelive-data-layout.service \
    file://makespacelive-mark-good.service \
"
S = "${UNPACKDIR}"

inherit systemd allarch

SYSTEMD_SERVICE:${PN} = "\
    makespacelive-grow-data.service \
    makespacelive-data-layout.service \
    makespacelive-mark-good.service \
"

do_install() {
    install -d ${D}${libexecdir}
    install -m 0755 ${UNPACKDIR}/makespacelive-grow-data ${D}${libexecdir}/makespacelive-grow-data
    install -m 0755 ${UNPACKDIR}/makespacelive-data-layout ${D}${libexecdir}/makespacelive-data-layout
    install -d ${D}${systemd_system_unitdir}
    for unit in makespacelive-grow-data makespacelive-data-layout makespacelive-mark-good; do
        install -m 0644 ${UNPACKDIR}/$unit.service ${D}${systemd_system_unitdir}/$unit.service
    done
    install -d ${D}/data
}

FILES:${PN} += "/data"
RDEPENDS:${PN} = "rauc util-linux-blkid util-linux-findmnt util-linux-lsblk util-linux-partx util-linux-sfdisk"
