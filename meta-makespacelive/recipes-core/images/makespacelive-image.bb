SUMMARY = "makespacelive appliance image: read-only A/B root with the streaming service"
LICENSE = "MIT"

inherit core-image

IMAGE_FEATURES += "ssh-server-openssh"

IMAGE_INSTALL = " \
    packagegroup-core-boot \
    makespacelive \
    makespacelive-data \
    rauc \
    networkmanager \
    networkmanager-nmcli \
    wpa-supplicant \
    dnsmasq \
    avahi-daemon \
    ca-certificates \
    glib-networking \
    kernel-modules \
    ${MACHINE_EXTRA_RRECOMMENDS} \
"
IMAGE_INSTALL:append:rpi = " linux-firmware-rpidistro-bcm43430 linux-firmware-rpidistro-bcm43455 bluez-firmware-rpidistro-bcm43430a1-hcd"

IMAGE_FSTYPES:append = " ext4"
IMAGE_LINGUAS = ""
# Room for logs in RAM and the service's own files; the root is read-only anyway.
IMAGE_ROOTFS_EXTRA_SPACE = "65536"
