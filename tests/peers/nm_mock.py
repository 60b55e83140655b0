'''NetworkManager for tests: python-dbusmock's `networkmanager` template plus what the
service uses and the template lacks, with a scripted radio.

There is no Wi-Fi hardware on a build machine, so the radio is simulated here: which
networks are "in the air", their passwords, whether they hand out DHCP leases. Everything
else is the real D-Bus protocol on a real dbus-daemon (the QEMU rung runs the same flow
against the real NetworkManager on the kernel's mac80211_hwsim radios).

Start (tests/peers/nm.rs does this):
    python3 -m dbusmock --system --template tests/peers/nm_mock.py
with DBUS_SYSTEM_BUS_ADDRESS pointing at a private dbus-daemon. One Wi-Fi device,
`wlan0` at /org/freedesktop/NetworkManager/Devices/wlan0, disconnected, no connectivity.

Added to NetworkManager's API (as NetworkManager 1.4x behaves):
  Manager  AddAndActivateConnection2(a{sa{sv}} settings, o device, o ap, a{sv} options)
           ActivateConnection(o profile, device, "/") -> that profile ("/": the best saved one in range)
           DeactivateConnection(o)               -> volatile profiles are deleted
           properties Connectivity, State, PrimaryConnection follow the device
  Device   StateChanged(u new, u old, u reason) through PREPARE, CONFIG, NEED_AUTH,
           IP_CONFIG to ACTIVATED or FAILED with NMDeviceStateReason; StateReason property
  Settings AddConnection(a{sa{sv}}) -> o     saved, not activated (autoconnect may bring it up)
  Profile  GetSettings without secrets, GetSecrets(s setting), Delete, and Update /
           Update2(a{sa{sv}}, u flags, a{sv}) replacing the whole profile; sent without
           any secret, the saved secrets are kept (NetworkManager's update_auth_cb)
  Wireless RequestScan (refused while the device serves an access point, as
           NetworkManager does), LastScan (ms), ActiveAccessPoint
  Active   Ip4Config -> IP4Config AddressData (192.168.77.50/24 on a venue network)

Scripting API (methods of org.freedesktop.DBus.Mock on /org/freedesktop/NetworkManager):
  AddVenue(s ssid, s psk, s security, y strength, u frequency_mhz)
      A network in range. security: open | wpa2 | wpa3 | transition | enterprise.
      Adding an SSID again adds another access point of it (the last one is joined).
  SetVenue(s ssid, s key, v value)
      key present (b): in range or gone (a connection on it drops); back in range, a
      saved profile for it is brought up by itself (autoconnect; of several in range, the
      one of highest autoconnect-priority). key dhcp (b): whether it gives leases.
      key hangs (b): connections to it never finish. key psk (s).
  AddSavedNetwork(s ssid, s psk) -> o
      A saved client profile (a keyfile on /data); brought up at once if in range.
  SetScanInAp(b allowed)
      Whether RequestScan works while serving an access point (default false).
  Calls() -> s
      JSON list of {"method", "args"} for AddAndActivateConnection2, ActivateConnection,
      DeactivateConnection, RequestScan, AddConnection, Update, Update2 and Delete, in
      order; byte arrays that are UTF-8 become strings (SSIDs), D-Bus containers become
      JSON ones.
  Profiles() -> s
      JSON object: each saved profile's path -> its settings, secrets included (what
      NetworkManager would have in its keyfile).

Reasons used: 7 NO_SECRETS (wrong password), 53 SSID_NOT_FOUND (network gone),
5 IP_CONFIG_UNAVAILABLE (no DHCP lease), 39 USER_REQUESTED (deactivated).
'''

import json
import time

import dbus
import dbusmock
from dbusmock import MOCK_IFACE
from dbusmock.templates import networkmanager as nmt
from dbusmock.templates.networkmanager import *  # noqa: F401,F403 (the template's mock methods)
from gi.repository import GLib

BUS_NAME = nmt.BUS_NAME
MAIN_OBJ = nmt.MAIN_OBJ
SYSTEM_BUS = True
IS_OBJECT_MANAGER = True

NM_PATH = nmt.MANAGER_OBJ
DEV = '/org/freedesktop/NetworkManager/Devices/wlan0'
VENUE_ADDRESS = '192.168.77.50'

DISCONNECTED, PREPARE, CONFIG, NEED_AUTH, IP_CONFIG, ACTIVATED, DEACTIVATING, FAILED = 30, 40, 50, 60, 70, 100, 110, 120
NO_SECRETS, SSID_NOT_FOUND, IP_CONFIG_UNAVAILABLE, USER_REQUESTED = 7, 53, 5, 39
STEP_MS = 100

PSK, SAE, EAP = 0x100, 0x400, 0x200
# The settings NetworkManager treats as secrets (never in GetSettings).
SECRETS = {'802-11-wireless-security': {'psk', 'wep-key0', 'wep-key1', 'wep-key2', 'wep-key3', 'leap-password'},
           '802-1x': {'password', 'private-key-password', 'phase2-private-key-password', 'pin'}}
SECURITY = {'open': 0, 'wpa2': PSK | 0x88, 'wpa3': SAE | 0x88, 'transition': PSK | SAE | 0x88, 'enterprise': EAP | 0x88}

WORLD = {'venues': {}, 'calls': [], 'scan_in_ap': False, 'ap': None, 'active': None, 'counter': 0}


def load(mock, parameters):
    nmt.load(mock, {'Connectivity': dbus.UInt32(1), 'State': dbus.UInt32(20), **parameters})
    nm = dbusmock.get_object(NM_PATH)
    nm.AddProperties(nmt.MANAGER_IFACE, {'PrimaryConnection': dbus.ObjectPath('/')})
    nm.AddWiFiDevice('wlan0', 'wlan0', DISCONNECTED)
    dev = dbusmock.get_object(DEV)
    dev.AddProperties(nmt.WIRELESS_DEVICE_IFACE, {'LastScan': dbus.Int64(-1), 'ActiveAccessPoint': dbus.ObjectPath('/')})
    dev.AddMethod(nmt.WIRELESS_DEVICE_IFACE, 'RequestScan', 'a{sv}', '', 'self.mock_request_scan(args[0])')
    dev.mock_request_scan = request_scan
    nm.AddMethod(nmt.MANAGER_IFACE, 'AddAndActivateConnection2', 'a{sa{sv}}ooa{sv}', 'ooa{sv}',
                 'ret = self.mock_add_activate(args[0], args[1], args[2], args[3])')
    nm.AddMethod(nmt.MANAGER_IFACE, 'ActivateConnection', 'ooo', 'o', 'ret = self.mock_activate_saved(args[0], args[1])')
    nm.AddMethod(nmt.MANAGER_IFACE, 'DeactivateConnection', 'o', '', 'self.mock_deactivate(args[0])')
    settings = dbusmock.get_object(nmt.SETTINGS_OBJ)
    settings.AddMethod(nmt.SETTINGS_IFACE, 'AddConnection', 'a{sa{sv}}', 'o', 'ret = self.mock_add(args[0])')
    settings.mock_add = add_connection
    nm.mock_add_activate = add_and_activate2
    nm.mock_activate_saved = activate_saved
    nm.mock_deactivate = deactivate


def record(method, *args):
    WORLD['calls'].append({'method': method, 'args': [plain(a) for a in args]})


def plain(value):
    '''D-Bus values as JSON values.'''
    if isinstance(value, dbus.Boolean):
        return bool(value)
    if isinstance(value, (dbus.ByteArray, bytes)):
        return bytes(value).decode('utf-8', 'replace')
    if isinstance(value, dbus.Array) and value.signature == 'y':
        try:
            return bytes(int(b) for b in value).decode('utf-8')
        except UnicodeDecodeError:
            return [int(b) for b in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def obj(path):
    return dbusmock.get_object(path)


def device_state(new, reason):
    dev = obj(DEV)
    old = dev.Get(nmt.DEVICE_IFACE, 'State')
    dev.Set(nmt.DEVICE_IFACE, 'State', dbus.UInt32(new))
    dev.Set(nmt.DEVICE_IFACE, 'StateReason', dbus.Struct((dbus.UInt32(new), dbus.UInt32(reason)), signature='uu'))
    dev.EmitSignal(nmt.DEVICE_IFACE, 'StateChanged', 'uuu', [dbus.UInt32(new), old, dbus.UInt32(reason)])


def set_online(online):
    nm = obj(NM_PATH)
    nm.SetConnectivity(dbus.UInt32(4 if online else 1))
    nm.SetGlobalConnectionState(dbus.UInt32(70 if online else 20))


def later(steps):
    '''Runs (delay_steps, function) pairs one STEP_MS apart, as NetworkManager does after a call returns.'''
    for n, step in enumerate(steps, start=1):
        GLib.timeout_add(n * STEP_MS, lambda step=step: step() and False)


def ssid_of(settings):
    return plain(settings.get('802-11-wireless', {}).get('ssid', dbus.Array([], signature='y')))


def request_scan(_options):
    record('RequestScan')
    if WORLD['ap'] is not None and not WORLD['scan_in_ap']:
        raise dbus.exceptions.DBusException('Scanning not allowed while in AP mode',
                                            name='org.freedesktop.NetworkManager.Device.NotAllowed')
    GLib.timeout_add(STEP_MS, lambda: obj(DEV).Set(nmt.WIRELESS_DEVICE_IFACE, 'LastScan',
                                                      dbus.Int64(int(time.monotonic() * 1000))) and False)


def add_profile(settings):
    '''A settings object like NetworkManager's (the template's, without its autoconnect).'''
    settings = dbus.Dictionary({str(k): dbus.Dictionary(v, signature='sv') for k, v in settings.items()}, signature='sa{sv}')
    auto = settings['connection'].get('autoconnect', True)
    settings['connection']['autoconnect'] = dbus.Boolean(False)
    path = obj(nmt.SETTINGS_OBJ).SettingsAddConnection(settings)
    profile = obj(path)
    profile.settings['connection']['autoconnect'] = dbus.Boolean(auto)
    profile.mock_record = record
    profile.mock_update = update
    profile.mock_secrets = secrets_of
    profile.AddMethod(nmt.CSETTINGS_IFACE, 'Delete', '', '',
                      'self.mock_record("Delete", self.settings); self.ConnectionDelete(self)')
    profile.AddMethod(nmt.CSETTINGS_IFACE, 'GetSettings', '', 'a{sa{sv}}', 'ret = self.mock_secrets(self.settings, False)')
    profile.AddMethod(nmt.CSETTINGS_IFACE, 'GetSecrets', 's', 'a{sa{sv}}',
                      'ret = {args[0]: self.mock_secrets(self.settings, True).get(args[0], {})}')
    profile.AddMethod(nmt.CSETTINGS_IFACE, 'Update', 'a{sa{sv}}', '', 'self.mock_update(self, "Update", args[0])')
    profile.AddMethod(nmt.CSETTINGS_IFACE, 'Update2', 'a{sa{sv}}ua{sv}', 'a{sv}',
                      'self.mock_update(self, "Update2", args[0], args[1]); ret = {}')
    return dbus.ObjectPath(path)


def secrets_of(settings, wanted):
    '''The settings without their secrets (wanted False) or only the secrets (True).'''
    out = dbus.Dictionary({}, signature='sa{sv}')
    for group, values in settings.items():
        kept = {k: v for k, v in values.items() if (k in SECRETS.get(str(group), ())) == wanted}
        if kept or not wanted:
            out[group] = dbus.Dictionary(kept, signature='sv')
    return out


def update(profile, method, settings, *flags):
    '''Update/Update2 as NetworkManager does them: the profile becomes what was sent; sent
    without any secret, the secrets it had are kept (update_auth_cb in
    src/core/settings/nm-settings-connection.c).'''
    record(method, settings, *flags)
    if not settings:
        return
    new = {str(k): dbus.Dictionary(v, signature='sv') for k, v in settings.items()}
    if not any(secrets_of(new, True).values()):
        for group, values in secrets_of(profile.settings, True).items():
            new.setdefault(group, dbus.Dictionary({}, signature='sv')).update(values)
    new['connection'].setdefault('uuid', profile.settings['connection']['uuid'])
    profile.settings = dbus.Dictionary(new, signature='sa{sv}')
    profile.EmitSignal(nmt.CSETTINGS_IFACE, 'Updated', '', [])


def add_connection(settings):
    '''Settings.AddConnection: saved to disk, activated only by autoconnect.'''
    record('AddConnection', settings)
    path = add_profile(settings)
    GLib.timeout_add(STEP_MS, lambda: autoconnect() and False)
    return path


def add_and_activate2(settings, device, _ap, options):
    record('AddAndActivateConnection2', settings, device, options)
    profile = add_profile(settings)
    obj(profile).volatile = options.get('persist') == 'volatile'
    return (profile, activate(profile), dbus.Dictionary({}, signature='sv'))


def best_saved():
    '''The saved client profile for a network in range with the highest autoconnect-priority
    (the first listed of equals), if any.'''
    best = None
    for path in obj(nmt.SETTINGS_OBJ).ListConnections():
        settings = obj(path).settings
        venue = WORLD['venues'].get(ssid_of(settings))
        if venue and venue['present'] and settings['802-11-wireless'].get('mode', 'infrastructure') != 'ap':
            priority = int(settings['connection'].get('autoconnect-priority', 0))
            if best is None or priority > best[0]:
                best = (priority, dbus.ObjectPath(path))
    return best and best[1]


def activate_saved(connection, device):
    record('ActivateConnection', connection, device)
    if connection != '/':
        return activate(connection)
    profile = best_saved()
    if profile is None:
        raise dbus.exceptions.DBusException('No suitable connection found',
                                            name='org.freedesktop.NetworkManager.UnknownConnection')
    return activate(profile)


def activate(profile):
    if WORLD['active'] is not None:
        drop(WORLD['active'])
    WORLD['counter'] += 1
    path = dbus.ObjectPath(f'/org/freedesktop/NetworkManager/ActiveConnection/{WORLD["counter"]}')
    settings = obj(profile).settings
    nm = obj(NM_PATH)
    nm.AddObject(path, nmt.ACTIVE_CONNECTION_IFACE, {
        'Connection': profile, 'SpecificObject': dbus.ObjectPath('/'), 'Id': settings['connection']['id'],
        'Uuid': settings['connection']['uuid'], 'Type': settings['connection']['type'], 'State': dbus.UInt32(1),
        'Devices': dbus.Array([dbus.ObjectPath(DEV)], signature='o'), 'Ip4Config': dbus.ObjectPath('/'),
        'Default': False, 'Default6': False, 'Vpn': False, 'Master': dbus.ObjectPath('/'),
    }, [])
    actives = nm.Get(nmt.MANAGER_IFACE, 'ActiveConnections')
    nm.Set(nmt.MANAGER_IFACE, 'ActiveConnections', dbus.Array(list(actives) + [path], signature='o'))
    obj(DEV).Set(nmt.DEVICE_IFACE, 'ActiveConnection', path)
    WORLD['active'] = path
    if settings['802-11-wireless'].get('mode') == 'ap':
        WORLD['ap'] = path
        later([lambda: device_state(PREPARE, 0), lambda: device_state(CONFIG, 0),
               lambda: device_state(IP_CONFIG, 0), lambda: finish(path, ACTIVATED, 0)])
    else:
        later(client_steps(path, settings))
    return path


def client_steps(path, settings):
    venue = WORLD['venues'].get(ssid_of(settings))
    steps = [lambda: device_state(PREPARE, 0), lambda: device_state(CONFIG, 0)]
    if venue is None or not venue['present']:
        return steps + [lambda: finish(path, FAILED, SSID_NOT_FOUND)]
    if venue['hangs']:
        return steps
    psk = str(settings.get('802-11-wireless-security', {}).get('psk', ''))
    if venue['security'] != 'open' and psk != venue['psk']:
        return steps + [lambda: device_state(NEED_AUTH, 0), lambda: finish(path, FAILED, NO_SECRETS)]
    steps.append(lambda: device_state(IP_CONFIG, 0))
    if not venue['dhcp']:
        return steps + [lambda: finish(path, FAILED, IP_CONFIG_UNAVAILABLE)]
    return steps + [lambda: finish(path, ACTIVATED, 0, venue)]


def finish(path, state, reason, venue=None):
    '''Ends an activation: ACTIVATED (online on a venue), or FAILED then DISCONNECTED.'''
    if WORLD['active'] != path:
        return
    if state == FAILED:
        drop(path)
        device_state(FAILED, reason)
        device_state(DISCONNECTED, reason)
        return
    active = obj(path)
    active.Set(nmt.ACTIVE_CONNECTION_IFACE, 'State', dbus.UInt32(2))
    if venue is not None:
        config = path.replace('ActiveConnection', 'IP4Config')
        obj(NM_PATH).AddObject(config, 'org.freedesktop.NetworkManager.IP4Config', {
            'AddressData': dbus.Array([dbus.Dictionary({'address': VENUE_ADDRESS, 'prefix': dbus.UInt32(24)},
                                                       signature='sv')], signature='a{sv}'),
        }, [])
        active.Set(nmt.ACTIVE_CONNECTION_IFACE, 'Ip4Config', dbus.ObjectPath(config))
        active.Set(nmt.ACTIVE_CONNECTION_IFACE, 'SpecificObject', venue['ap'])
        obj(DEV).Set(nmt.WIRELESS_DEVICE_IFACE, 'ActiveAccessPoint', venue['ap'])
        obj(NM_PATH).Set(nmt.MANAGER_IFACE, 'PrimaryConnection', path)
    device_state(ACTIVATED, 0)
    if venue is not None:
        set_online(True)
    else:
        # What NetworkManager 1.52 says for its own shared access point (seen on the QEMU
        # rung): limited connectivity, CONNECTED_LOCAL. Not a network to stream over.
        obj(NM_PATH).SetConnectivity(dbus.UInt32(3))
        obj(NM_PATH).SetGlobalConnectionState(dbus.UInt32(50))


def drop(path):
    '''Removes an active connection (and a volatile profile); no device signals.'''
    nm = obj(NM_PATH)
    profile = obj(path).Get(nmt.ACTIVE_CONNECTION_IFACE, 'Connection')
    actives = [a for a in nm.Get(nmt.MANAGER_IFACE, 'ActiveConnections') if a != path]
    nm.Set(nmt.MANAGER_IFACE, 'ActiveConnections', dbus.Array(actives, signature='o'))
    nm.RemoveObject(path)
    WORLD['active'] = None
    was_ap = WORLD['ap'] == path
    if was_ap:
        WORLD['ap'] = None
    obj(DEV).Set(nmt.DEVICE_IFACE, 'ActiveConnection', dbus.ObjectPath('/'))
    obj(DEV).Set(nmt.WIRELESS_DEVICE_IFACE, 'ActiveAccessPoint', dbus.ObjectPath('/'))
    if nm.Get(nmt.MANAGER_IFACE, 'PrimaryConnection') == path or was_ap:
        nm.Set(nmt.MANAGER_IFACE, 'PrimaryConnection', dbus.ObjectPath('/'))
        set_online(False)
    if getattr(obj(profile), 'volatile', False):
        obj(profile).ConnectionDelete(obj(profile))


def deactivate(path):
    record('DeactivateConnection', path)
    if WORLD['active'] != path:
        raise dbus.exceptions.DBusException('Not active', name='org.freedesktop.NetworkManager.ConnectionNotActive')
    device_state(DEACTIVATING, USER_REQUESTED)
    drop(path)
    device_state(DISCONNECTED, USER_REQUESTED)


def autoconnect():
    '''NetworkManager brings up a saved profile by itself when the device is idle.'''
    profile = best_saved()
    if WORLD['active'] is None and profile is not None:
        activate(profile)


@dbus.service.method(MOCK_IFACE, in_signature='sssyu', out_signature='')
def AddVenue(self, ssid, psk, security, strength, frequency):
    flags = SECURITY[str(security)]
    WORLD['counter'] += 1
    ap = obj(NM_PATH).AddAccessPoint(DEV, f'ap{WORLD["counter"]}', ssid, '02:00:00:00:00:01', 2, frequency, 54000,
                                     strength, flags)
    obj(ap).Set(nmt.ACCESS_POINT_IFACE, 'Flags', dbus.UInt32(1 if flags else 0))
    obj(ap).Set(nmt.ACCESS_POINT_IFACE, 'WpaFlags', dbus.UInt32(0))
    WORLD['venues'][str(ssid)] = {'psk': str(psk), 'security': str(security), 'present': True, 'dhcp': True,
                                  'hangs': False, 'ap': dbus.ObjectPath(ap), 'args': (ssid, frequency, strength, flags)}


@dbus.service.method(MOCK_IFACE, in_signature='ssv', out_signature='')
def SetVenue(self, ssid, key, value):
    venue = WORLD['venues'][str(ssid)]
    if key == 'present' and bool(value) != venue['present']:
        venue['present'] = bool(value)
        if not value:
            obj(NM_PATH).RemoveAccessPoint(DEV, venue['ap'])
            active = WORLD['active']
            if active is not None and obj(active).Get(nmt.ACTIVE_CONNECTION_IFACE, 'SpecificObject') == venue['ap']:
                drop(active)
                device_state(DISCONNECTED, SSID_NOT_FOUND)
        else:
            name = venue['ap'].rsplit('/', 1)[1]
            ssid_, frequency, strength, flags = venue['args']
            obj(NM_PATH).AddAccessPoint(DEV, name, ssid_, '02:00:00:00:00:01', 2, frequency, 54000, strength, flags)
            GLib.timeout_add(STEP_MS, lambda: autoconnect() and False)
    elif key in ('dhcp', 'hangs'):
        venue[key] = bool(value)
    elif key == 'psk':
        venue['psk'] = str(value)
    else:
        raise dbus.exceptions.DBusException(f'unknown venue key {key}', name='org.freedesktop.DBus.Mock.NameError')


@dbus.service.method(MOCK_IFACE, in_signature='ss', out_signature='o')
def AddSavedNetwork(self, ssid, psk):
    settings = {'connection': {'type': '802-11-wireless', 'id': ssid, 'autoconnect': True},
                '802-11-wireless': {'ssid': dbus.ByteArray(ssid.encode()), 'mode': 'infrastructure'}}
    if psk:
        settings['802-11-wireless-security'] = {'key-mgmt': 'wpa-psk', 'psk': psk}
    path = add_profile(settings)
    GLib.timeout_add(STEP_MS, lambda: autoconnect() and False)
    return path


@dbus.service.method(MOCK_IFACE, in_signature='b', out_signature='')
def SetScanInAp(self, allowed):
    WORLD['scan_in_ap'] = bool(allowed)


@dbus.service.method(MOCK_IFACE, in_signature='', out_signature='s')
def Calls(self):
    return json.dumps(WORLD['calls'])


@dbus.service.method(MOCK_IFACE, in_signature='', out_signature='s')
def Profiles(self):
    return json.dumps({str(path): plain(obj(path).settings) for path in obj(nmt.SETTINGS_OBJ).ListConnections()})
