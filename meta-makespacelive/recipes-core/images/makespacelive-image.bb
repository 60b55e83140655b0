SUMMARY = "makespacelive appliance image: read-only A/B root with the streaming service"
LICENSE = "MIT"

inherit core-image

IMAGE_FEATURES += "ssh-server-openssh"

IMAGE_INSTALL = " \
    packagegroup-core-boot \
    makespacelive \
    makespacelive-data \
    rauc \
    u-boot-env \
    libubootenv-bin \
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

# rauc would pull in rauc-mark-good, which marks every slot good as soon as it boots;
# here a slot is marked good only once the service is up (makespacelive-mark-good).
BAD_RECOMMENDATIONS += "rauc-mark-good"

# The kernel boots from the slot's own /boot, so an update replaces it with the root.
IMAGE_INSTALL:append = " kernel-image"

IMAGE_FSTYPES:append = " ext4"
IMAGE_LINGUAS = ""
# Room for logs in RAM and the service's own files; the root is read-only anyway.
IMAGE_ROOTFS_EXTRA_SPACE = "65536"
