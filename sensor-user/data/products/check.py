#!/usr/bin/env python3
"""Validates the product knowledge base in this folder (stdlib only).

    python3 sensor-user/data/products/check.py [-v]

Checks, for every products/*.toml:
  * it parses (tomllib) and holds only [[rule]] entries;
  * each rule has fact, match, category, weight, and optionally examples and
    counterexamples (values it must and must not match); fact and category are known;
    weight in [-3.5, 3.5], not zero (negative: evidence against the category); the glob compiles (a Python port of globset's syntax: `*`, `?`,
    `[...]`, `[!...]`, nested `{a,b}`; empty alternatives are dropped, as globset does by
    default);
  * every rule sits under a `# source:` comment (reset by each `# ---` section header),
    in these files and in the built-in ../classify.toml alike;
  * no (fact, match) pair is repeated within or across files, or repeats one of the
    built-in ../classify.toml (which is loaded alongside, so it would vote twice);
  * every hostname / model / mdns_instance rule has examples below, matches each of its
    positive examples and none of its negative ones;
  * cross-brand false positives: every example value (the positives of all rules, plus the
    OTHER_BRANDS list) is run through all rules of the same fact; a rule of another
    category that matches it is an error unless the pair is listed in ALLOWED_OVERLAP;
  * vendor globs (here and in ../classify.toml) match at least one organisation of the
    IEEE registry when the oui-data
    crate's CSVs are found (warning otherwise).
Exit status 1 on any error.
"""

import glob
import os
import re
import sys
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
BUILTIN = os.path.join(HERE, "..", "classify.toml")

CATEGORIES = {
    "camera", "doorbell", "speaker", "tv-media", "plug-switch", "light",
    "thermostat-sensor", "hub-bridge", "printer", "appliance", "health", "network",
    "computer-phone", "lock", "alarm", "unknown",
}
FACTS = {
    "vendor", "hostname", "dhcp_vendor_class", "dhcp_prl", "dns", "mdns_service",
    "mdns_query", "mdns_instance", "mdns_txt", "model", "ssdp_server", "ssdp_type",
    "ssdp_usn", "ssdp_search", "lldp_description", "lldp_capability", "wsd_type",
    "wsd_scope", "wsd_action", "kasa", "tuya", "mqtt_client", "user_agent", "tls_name",
}
EXAMPLE_FACTS = {"hostname", "model", "mdns_instance"}

# Positive and negative example values per (fact, match). Values are what devices of the
# named product line send (from the vendors' model lists cited in the rule files).
EXAMPLES = {
    # computers-phones.toml
    ("model", "iPhone[0-9]*,[0-9]*"): (["iPhone14,5", "iPhone10,3"], ["iPhone", "iPad13,1"]),
    ("model", "iPad[0-9]*,[0-9]*"): (["iPad13,1", "iPad7,11"], ["iPhone14,5"]),
    ("model", "iPod[0-9]*,[0-9]*"): (["iPod9,1", "iPod7,1"], ["iPhone14,5"]),
    ("model", "{MacBook,MacBookAir,MacBookPro,iMac,iMacPro,Macmini,MacPro,Mac}[0-9]*,[0-9]*"):
        (["MacBookPro18,3", "Mac14,2", "iMac21,1", "Macmini9,1", "MacBookAir10,1"],
         ["AppleTV6,2", "MacBook", "Mac mini"]),
    ("model", "AppleTV[0-9]*,[0-9]*"): (["AppleTV6,2", "AppleTV14,1"], ["AudioAccessory5,1"]),
    ("model", "AudioAccessory[0-9]*,[0-9]*"): (["AudioAccessory5,1", "AudioAccessory1,1"], ["AppleTV6,2"]),
    ("model", "AirPort[0-9]*,[0-9]*"): (["AirPort10,115", "AirPort7,120"], ["AppleTV6,2"]),
    ("hostname", "*iPhone*"): (["iPhone", "Johns-iPhone", "iPhone-13"], ["Galaxy-S21"]),
    ("hostname", "*iPad*"): (["iPad", "Janes-iPad"], ["iPhone"]),
    ("hostname", "*MacBook*"): (["Janes-MacBook-Air", "MacBook-Pro"], ["iMac"]),
    ("hostname", "*-iMac*"): (["Johns-iMac", "Office-iMac-2"], ["iMac", "shellyplug-s-ABC123"]),
    ("hostname", "{DESKTOP,LAPTOP}-[0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z]"):
        (["DESKTOP-7K2M1QX", "LAPTOP-AB12CD3"], ["DESKTOP-1", "DESKTOP-7K2M1QXY"]),
    ("hostname", "android-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]*"):
        (["android-1a2b3c4d5e6f7a8b", "android-0123456789abcdef"], ["android-dhcp-13", "android"]),
    ("hostname", "Galaxy-{S,A,Z,Note,Tab,M}*"): (["Galaxy-S21", "Galaxy-A52", "Galaxy-Tab-S8"], ["Galaxy-Watch4"]),
    ("hostname", "raspberrypi"): (["raspberrypi"], ["raspberrypi4-hub"]),
    # network.toml
    ("model", "*Nest Wifi*"): (["Google Nest Wifi point", "Nest Wifi point"], ["Google Nest Mini"]),
    ("hostname", "{RT,GT}-{AC,AX,AXE,BE}[0-9]*"): (["RT-AC68U", "RT-AX88U", "GT-AX11000"], ["RT-N12", "HS-AP1"]),
    # printers.toml
    ("hostname", "BR{N,W}[0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F]*"):
        (["BRN3C2AF4112233", "BRW008077A1B2C3"], ["BRN_310107", "BRAVIA-TV", "BROTHER"]),
    ("hostname", "BRN_[0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F]*"): (["BRN_310107"], ["BRN3C2AF4112233"]),
    ("model", "Brother {HL,MFC,DCP,QL,PT,ADS,RJ,TD}-*"):
        (["Brother HL-L2350DW series", "Brother MFC-L2710DW series", "Brother QL-820NWB"], ["Brother"]),
    ("mdns_instance", "Brother {HL,MFC,DCP,QL,PT,ADS,RJ,TD}-*"):
        (["Brother HL-L2350DW series", "Brother DCP-L2550DW series"], ["Brother's iPhone"]),
    ("hostname", "NPI[0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F]*"): (["NPI1A2B3C", "NPIBB99EE"], ["NPI", "NPIXYZ123"]),
    ("model", "HP {*Jet*,PageWide*,Smart Tank*,Tango*,ENVY*series*,Photosmart*}"):
        (["HP OfficeJet Pro 9010 series", "HP LaserJet MFP M234dwe", "HP ENVY 6000 series", "HP DeskJet 2700 series"],
         ["HP ENVY x360 Convertible", "HP EliteBook 840"]),
    ("model", "EPSON {ET,XP,WF,SC,EW,EP,PX,L,M}*"): (["EPSON ET-2720 Series", "EPSON XP-6100 Series", "EPSON WF-2830 Series"], ["EPSON"]),
    ("mdns_instance", "EPSON {ET,XP,WF,SC,EW,EP,PX,L,M}*"): (["EPSON ET-2720 Series", "EPSON L3150 Series"], ["Epson-Laptop"]),
    ("model", "Canon {MF,LBP,TS,TR,MG,MX,iP,iX,iB,G,GX,MB,TM,PRO,E}[0-9]*"):
        (["Canon TS8300 series", "Canon MF743C/MF746C", "Canon G7000 series"], ["Canon EOS R6"]),
    ("model", "Canon iR*"): (["Canon iR-ADV C5535", "Canon iR1643i"], ["Canon EOS R6"]),
    ("model", "{Xerox,Kyocera,KONICA MINOLTA,RICOH,Lexmark,OKI,Pantum,Sharp MX-}*"):
        (["Xerox WorkCentre 6515", "Kyocera ECOSYS M5526cdw", "Lexmark MS610de"], ["Sharp Aquos TV"]),
    ("model", "ECOSYS *"): (["ECOSYS P2040dw", "ECOSYS M5526cdw"], ["Kyocera ECOSYS M5526cdw"]),
    # cameras-doorbells.toml
    ("hostname", "axis-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]"):
        (["axis-accc8e123456", "axis-00408c1a2b3c"], ["axis-camera", "axisbank"]),
    ("mdns_instance", "AXIS {M,P,Q,F,FA,V}[0-9]*"): (["AXIS M3045-V - ACCC8E123456", "AXIS P1448-LE - B8A44F000001"], ["Axis Bank app"]),
    ("model", "KC[1-4][0-9][0-9]*"): (["KC100", "KC410S(US)"], ["KC", "KL130"]),
    ("model", "KD1[0-9][0-9]*"): (["KD110", "KD110(US)"], ["KC100"]),
    ("model", "{Tapo C,C}[1-5][0-9][0-9]"): (["C200", "Tapo C210"], ["C6", "C320WS", "C135X"]),
    ("model", "{Tapo C,C}[1-5][0-9][0-9]{W,WS,S,N,(}*"): (["C320WS", "C510W", "C200(EU)"], ["C200", "C135X", "CS-C6N"]),
    ("model", "TC[67][0-9]"): (["TC60", "TC70"], ["TC7000"]),
    ("model", "{Tapo D,D}2[0-9][0-9]*"): (["D230", "Tapo D225"], ["D1"]),
    ("hostname", "{chuangmi,isa,mijia,xiaomi}-camera-*"):
        (["chuangmi-camera-ipc009_miio123456", "isa-camera-hlc7_mibt1234"], ["chuangmi-plug-m1_miio1"]),
    ("mdns_instance", "{chuangmi,isa,mijia,xiaomi}-camera-*"): (["chuangmi-camera-ipc019_miio9", "isa-camera-hlc6_miio77"], ["lumi-gateway-v3_miio1"]),
    ("hostname", "lumi-camera-*"): (["lumi-camera-gwagl01_miio12", "lumi-camera-aq2_miio3"], ["lumi-gateway-v3_miio1"]),
    # speakers-media.toml
    ("model", "{Chromecast,Chromecast Ultra,Chromecast HD,Google TV Streamer,Chromecast with Google TV*}"):
        (["Chromecast", "Chromecast Ultra", "Chromecast HD", "Chromecast with Google TV (4K)"], ["Chromecast Audio"]),
    ("model", "Chromecast Audio"): (["Chromecast Audio"], ["Chromecast"]),
    ("model", "Google Nest Hub*"): (["Google Nest Hub", "Google Nest Hub Max"], ["Google Nest Mini"]),
    ("model", "{SHIELD Android TV,BRAVIA *,MITV-*}"): (["SHIELD Android TV", "BRAVIA 4K VH2", "MITV-MSSP2"], ["Android"]),
    ("model", "{JBL Link *,*ThinQ Speaker,Bose Smart *,Marshall *,Lenovo Smart Clock*}"):
        (["JBL Link 20", "LG WK7 ThinQ Speaker", "Bose Smart Ultra Soundbar", "Marshall Stanmore II"], ["JBL"]),
    ("model", "{3810X,3820X,4660X,7820X,C105X,C135X}"): (["3810X", "C135X"], ["3810", "3810XL"]),
    ("hostname", "squeezebox*"): (["squeezebox", "SqueezeboxTouch"], ["sonos"]),
    ("hostname", "tizen*"): (["tizen", "Tizen-TV"], ["Samsung"]),
    ("hostname", "LGwebOSTV*"): (["LGwebOSTV", "LGwebOSTV-2"], ["LG-Phone"]),
    # plugs-lights.toml
    ("model", "{HS2[0-9][0-9],HS3[0-9][0-9],EP[1-4][0-9],KS2[0-9][0-9],ES20M}*"):
        (["HS200(US)", "HS300(US)", "EP10(US)", "KS230(US)", "ES20M(US)"], ["HS110(EU)", "KP115(UK)", "HS-AP1"]),
    ("model", "KP[1-4][0-9][0-9]*"): (["KP115(UK)", "KP303(US)", "KP401"], ["KP", "KPX"]),
    ("model", "{KL[0-9][0-9],KB[0-9][0-9][0-9],LB[12][0-9][0-9]}*"):
        (["KL130(US)", "KL50(US)", "KL400L5(US)", "LB130(EU)", "KB130"], ["KP115(UK)", "KLX"]),
    ("model", "{P1[0-9][0-9],P3[0-9][0-9],S5[0-9][0-9]}*"): (["P110(EU)", "P100", "P300(EU)", "S505D"], ["P1", "S5"]),
    ("model", "{L5[0-9][0-9],L6[0-9][0-9],L9[0-9][0-9]}*"): (["L530E", "L630", "L900-5"], ["L5", "LB130"]),
    ("model", "{H100,H200,KH100}*"): (["H100(EU)", "H200", "KH100(UK)"], ["H1"]),
    ("hostname", "{HS[1-3][0-9][0-9],KP[1-4][0-9][0-9],EP[1-4]0,KS2[0-9][0-9]}*"):
        (["HS110", "HS103", "KP115", "EP10", "KS230"], ["HS-AP1", "HSBC-laptop", "EPSON123456", "EP"]),
    ("hostname", "{KL[1-4][0-9][0-9],LB[12][0-9][0-9]}*"): (["KL130", "KL110", "LB130"], ["KLM-PC", "LB"]),
    ("model", "MSS[0-9][0-9][0-9]*"): (["MSS110", "MSS425E", "MSS550X"], ["MSL120"]),
    ("model", "MSL[0-9][0-9][0-9]*"): (["MSL120", "MSL320"], ["MSS110"]),
    ("model", "MSH[0-9][0-9][0-9]*"): (["MSH300", "MSH300HK"], ["MSS110"]),
    ("model", "MSG[12]00*"): (["MSG100", "MSG200"], ["MSG"]),
    ("hostname", "shelly{1,1pm,1l,switch,switch25,plug,plug-s,plug-u1,plug2,4pro,em,em3,uni,ix3,button1,sk}-[0-9a-f]*"):
        (["shelly1-34945474A1B2", "shellyplug-s-ABC123", "shellyswitch-559F55", "shellyswitch25-AABBCC"],
         ["shellyht-ABC123", "shellydimmer2-ABC123", "shellyplusplugs-a8032ab12345"]),
    ("hostname", "shelly{plus,pro}{1,1pm,2,2pm,3,4pm,plugs,plugus,plugit,pluguk,i4,i4dc,1mini,1pmmini,pmmini,3em,em,dimmer,uni}-[0-9a-f]*"):
        (["shellyplus1pm-441793d69718", "shellyplus2pm-5443b23d81f8", "shellypro4pm-aabbcc112233", "shellyplusplugs-a8032ab12345"],
         ["shellyplusht-a8032ab12345", "shellyplussmoke-a8032ab12345"]),
    ("hostname", "shelly{1,1pm,2pm,pm,i4,em,3em}{g3,minig3,g4,minig4}-[0-9a-f]*"):
        (["shelly1pmminig3-543204519264", "shellypmminig3-84fce63957f4", "shelly1minig3-543204547478"], ["shellyhtg3-543204547478"]),
    ("hostname", "shelly{plugsg3,plugsg4,outdoorsg3,azplug}-[0-9a-f]*"): (["shellyplugsg3-543204547478", "shellyazplug-aabbccddeeff"], ["shellyplug-s-ABC123"]),
    ("hostname", "shelly{dimmer,dimmer2,bulb,bulbduo,colorbulb,vintage,rgbw2,plusrgbwpm,rgbwpmg3,dimmerg3,0110dimg3}-[0-9a-f]*"):
        (["shellydimmer2-ABC123", "shellybulbduo-ABC123", "shellyrgbw2-0A1B2C"], ["shelly1-34945474A1B2"]),
    ("hostname", "{chuangmi-plug,cuco-plug,qmi-powerstrip,zimi-powerstrip,lumi-plug}-*"):
        (["chuangmi-plug-m1_miio1234", "cuco-plug-cp1_miap12ab", "qmi-powerstrip-v1_miio5"], ["chuangmi-camera-ipc009_miio1"]),
    ("mdns_instance", "{chuangmi-plug,cuco-plug,qmi-powerstrip,zimi-powerstrip,lumi-plug}-*"):
        (["chuangmi-plug-v3_miio123", "zimi-powerstrip-v2_miio9"], ["yeelink-light-color1_miio1"]),
    ("hostname", "{yeelink-light,philips-light,opple-light}-*"):
        (["yeelink-light-color1_miapA1B2", "philips-light-bulb_miio12", "yeelink-light-ceiling4_mibt72799069"], ["yeelink"]),
    ("mdns_instance", "{yeelink-light,philips-light,opple-light}-*"): (["yeelink-light-color1_miioXXXX", "philips-light-bulb_miio1"], ["Philips Hue - 1A2B3C"]),
    ("model", "LIFX *"): (["LIFX A19", "LIFX Mini", "LIFX Z"], ["LIFX"]),
    ("model", "NL[0-9][0-9]*"): (["NL29", "NL42", "NL59"], ["NL", "NLX1"]),
    ("hostname", "{wiz_*,twinkly_*,zengge_[0-9a-f][0-9a-f]_*}"): (["wiz_1a2b3c", "twinkly_abc123", "zengge_35_a1b2c3d4"], ["wizard-pc", "zengge_x"]),
    ("hostname", "hf-lpb100-zj*"): (["hf-lpb100-zj200", "HF-LPB100-ZJ002"], ["hf-lpb100"]),
    ("hostname", "wled-*"): (["wled-a1b2c3", "wled-Kitchen"], ["wled"]),
    ("hostname", "{tasmota-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9][0-9][0-9][0-9],sonoff-[0-9][0-9][0-9][0-9]}"):
        (["tasmota-1A2B3C-1234", "sonoff-4567"], ["tasmota", "sonoff-basic"]),
    # climate-sensors.toml
    ("model", "ecobee*"): (["ecobee3 lite", "ecobee4", "ecobee Switch+"], ["eb"]),
    ("hostname", "lyric-*"): (["lyric-t6", "Lyric-ABC123"], ["lyrics"]),
    ("hostname", "{tado*,sensibo*,xl857-*,nuheat}"): (["tado-IB01", "sensibo-sky", "xl857-1234", "nuheat"], ["my-tadpole", "nuheat-2"]),
    ("model", "{tado,AC02,Sensibo*,Healthy Home Coach,Netatmo Relay}"): (["tado", "AC02", "Sensibo", "Healthy Home Coach"], ["tado Smart Radiator"]),
    ("mdns_instance", "awair*"): (["awair-elem-1a2b3c", "Awair Omni"], ["air"]),
    ("hostname", "shelly{ht,plusht,htg3,trv,blugw}-[0-9a-f]*"): (["shellyht-ABC123", "shellyplusht-a8032ab12345", "shellytrv-60A423000000"], ["shellyplug-s-ABC123"]),
    ("hostname", "{zhimi,cgllc}-airmonitor-*"): (["zhimi-airmonitor-v1_miio1", "cgllc-airmonitor-b1_miio2"], ["zhimi-airpurifier-m1_miio1"]),
    ("mdns_instance", "{zhimi,cgllc}-airmonitor-*"): (["zhimi-airmonitor-v1_miio1", "cgllc-airmonitor-s1_miio9"], ["zhimi-fan-v3_miio1"]),
    ("model", "MTS[12][0-9][0-9]*"): (["MTS100", "MTS200B"], ["MTS"]),
    ("model", "{Welcome,Presence}"): (["Welcome", "Presence"], ["Presence Sensor FP2", "Welcome Home"]),
    # hubs.toml
    ("mdns_instance", "Philips Hue - *"): (["Philips Hue - 1A2B3C", "Philips Hue - E1F2A3"], ["Philips TV"]),
    ("model", "BSB00[1-3]"): (["BSB002", "BSB001"], ["BSB0021"]),
    ("model", "TRADFRI*"): (["TRADFRI gateway", "TRADFRI"], ["DIRIGERA"]),
    ("model", "Smart Bridge*"): (["Smart Bridge", "Smart Bridge 2"], ["Bridge"]),
    ("hostname", "{polisy*,eisy*,smartthings*,somfy_*,homeassistant}"): (["polisy", "eisy", "smartthings-hub", "somfy_1234", "homeassistant"], ["homeassistant-phone"]),
    ("hostname", "{lumi-gateway,lumi-acpartner,xiaomi-gateway}-*"): (["lumi-gateway-v3_miio123", "lumi-acpartner-v3_miio9"], ["lumi-camera-gwagl01_miio1"]),
    ("mdns_instance", "{lumi-gateway,lumi-acpartner,xiaomi-gateway}-*"): (["lumi-gateway-mgl03_miio1", "lumi-gateway-v3_miio9"], ["lumi-plug-v1_miio1"]),
    # locks-alarms.toml
    ("hostname", "nuki_bridge_*"): (["nuki_bridge_1A2B3C4D", "Nuki_Bridge_ABCDEF"], ["nuki"]),
    ("hostname", "{connect,august-*}"): (["connect", "august-1a2b3c"], ["connect-tv", "augustus"]),
    ("mdns_instance", "LOQED*"): (["LOQED-12345", "loqed bridge"], ["locked"]),
    ("hostname", "simplisafe*"): (["simplisafe", "SimpliSafe-Base"], ["simple-pc"]),
    ("model", "{Abode*,Iota}"): (["Abode", "Iota", "Abode Gateway"], ["Iota2"]),
    ("hostname", "shelly{flood,dw,dw2,smoke,motionsensor,motion2,gas,plussmoke,floodg4,dwg3}-[0-9a-f]*"):
        (["shellyflood-ABC123", "shellydw2-ABC123", "shellyplussmoke-a8032ab12345", "shellymotionsensor-60A423"], ["shellyht-ABC123"]),
    # appliances-health.toml
    ("hostname", "{irobot,roomba}-*"): (["iRobot-1A2B3C4D5E6F", "Roomba-3144C41234567890"], ["robot-pc"]),
    ("mdns_instance", "{irobot,roomba}-*"): (["iRobot-1A2B3C4D5E6F", "Roomba-31447B"], ["roomba"]),
    ("hostname", "{rockrobo,dreame,viomi}-vacuum-*"): (["rockrobo-vacuum-v1_miio1", "dreame-vacuum-p2008_miio2", "viomi-vacuum-v7_miio3"], ["viomi-fridge-x1"]),
    ("hostname", "{zhimi-airpurifier,zhimi-humidifier,deerma-humidifier,zhimi-fan,dmaker-fan,zhimi-heater,leshow-heater,zhimi-airfresh,nwt-derh,viomi-fridge}-*"):
        (["zhimi-airpurifier-m1_miap12ab", "dmaker-fan-p5_miio1", "deerma-humidifier-jsq4_miio2"], ["zhimi-airmonitor-v1_miio1"]),
    ("mdns_instance", "{zhimi-airpurifier,zhimi-humidifier,deerma-humidifier,zhimi-fan,dmaker-fan,zhimi-heater,leshow-heater,zhimi-airfresh,nwt-derh,rockrobo-vacuum,roborock-vacuum,dreame-vacuum,viomi-vacuum}-*"):
        (["zhimi-airpurifier-mb3_miio1", "roborock-vacuum-s5_miio2"], ["zhimi-airmonitor-v1_miio1"]),
    ("hostname", "{ismartgate*,rachio-*,pentair*,litter-robot*}"): (["ismartgate", "rachio-1a2b3c", "pentair-screenlogic", "litter-robot4"], ["rachiox"]),
    ("mdns_instance", "{rachio*,rainmachine*}"): (["Rachio-1A2B3C", "RainMachine-ABC"], ["rain"]),
    ("model", "{Rachio*,SPK5,Touch HD,iSmartGate}"): (["Rachio", "Rachio 3", "SPK5", "iSmartGate"], ["Touch"]),
    ("hostname", "teslawallconnector_*"): (["teslawallconnector_1A2B3C"], ["tesla-model3"]),
    ("hostname", "1118431-*"): (["1118431-01-J"], ["1118431"]),
}

# Other brands' values that must not be taken for a different category (fact, value,
# category the value really belongs to; "unknown" = must match no rule of that fact).
OTHER_BRANDS = [
    ("hostname", "ESP_3A1F2C", "unknown"),
    ("hostname", "HS-AP1", "unknown"),
    ("hostname", "amazon-1a2b3c4d", "unknown"),
    ("hostname", "Chromecast", "unknown"),
    ("hostname", "EPSON123456", "unknown"),
    ("hostname", "Philips-hue", "unknown"),
    ("hostname", "Galaxy-Watch4", "unknown"),
    ("hostname", "lwip0", "unknown"),
    ("hostname", "NAS-DS920", "unknown"),
    ("hostname", "KLM-PC", "unknown"),
    ("hostname", "Connect-TV", "unknown"),
    ("model", "HS110(EU)", "plug-switch"),
    ("model", "Google Nest Mini", "speaker"),
    ("model", "Google Home Mini", "speaker"),
    ("model", "CS-C6N", "unknown"),
    ("model", "DS-2CD2143G2-I", "unknown"),
    ("model", "Brother", "unknown"),
    ("model", "HP EliteBook 840 G8", "unknown"),
    ("model", "RT-N12", "unknown"),
    ("mdns_instance", "Living Room speaker", "unknown"),
    ("mdns_instance", "Kitchen", "unknown"),
    ("mdns_instance", "Google-Nest-Mini-0a1b2c3d", "unknown"),
]

# (fact, value, match) triples where a second rule of another category may match on purpose.
ALLOWED_OVERLAP = set()


def glob_regex(pat):
    """Python regex for a globset pattern (case-insensitive, `*` crosses `/`)."""
    out, i, depth, n = [], 0, 0, len(pat)
    stack = []  # per open brace: list of branch strings being collected
    cur = []

    def emit(s):
        cur.append(s)

    while i < n:
        c = pat[i]
        if c == "*":
            emit(".*")
        elif c == "?":
            emit(".")
        elif c == "[":
            j = i + 1
            neg = False
            if j < n and pat[j] in "!^":
                neg, j = True, j + 1
            k = j
            if k < n and pat[k] == "]":
                k += 1
            while k < n and pat[k] != "]":
                k += 1
            if k >= n:
                raise ValueError("unclosed character class")
            body = pat[j:k].replace("\\", "\\\\")
            emit("[" + ("^" if neg else "") + body + "]")
            i = k
        elif c == "{":
            stack.append((cur, []))
            cur = []
        elif c == "," and stack:
            stack[-1][1].append("".join(cur))
            cur = []
        elif c == "}":
            if not stack:
                raise ValueError("unopened alternates")
            parent, branches = stack.pop()
            branches.append("".join(cur))
            branches = [b for b in branches if b]  # globset drops empty alternatives
            cur = parent
            if branches:
                cur.append("(?:" + "|".join(branches) + ")")
        elif c == "\\":
            i += 1
            if i >= n:
                raise ValueError("dangling escape")
            emit(re.escape(pat[i]))
        else:
            emit(re.escape(c))
        i += 1
    if stack:
        raise ValueError("unclosed alternates")
    return re.compile("(?s)^" + "".join(cur) + "$", re.IGNORECASE)


def source_ok(path):
    """Line numbers of [[rule]] entries not under a `# source:` comment."""
    bad, have = [], False
    for no, line in enumerate(open(path, encoding="utf-8"), 1):
        s = line.strip()
        if s.startswith("# ---"):
            have = False
        elif s.startswith("#") and "source:" in s:
            have = True
        elif s == "[[rule]]" and not have:
            bad.append(no)
    return bad


def registry_orgs():
    pats = glob.glob(os.path.expanduser("~/.cargo/registry/src/*/oui-data-*/data/oui*.csv"))
    if not pats:
        return None
    import csv
    orgs = set()
    for p in pats:
        with open(p, encoding="utf-8") as f:
            for row in csv.DictReader(f):
                orgs.add(row["Organization Name"].strip())
    return orgs


def main():
    verbose = "-v" in sys.argv
    errors, warnings = [], []
    rules = []  # (file, fact, match, category, weight, regex)
    files = sorted(glob.glob(os.path.join(HERE, "*.toml")))
    for path in files:
        name = os.path.basename(path)
        try:
            with open(path, "rb") as f:
                doc = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            errors.append(f"{name}: does not parse: {e}")
            continue
        extra = set(doc) - {"rule"}
        if extra:
            errors.append(f"{name}: keys other than [[rule]]: {sorted(extra)}")
        for line in source_ok(path):
            errors.append(f"{name}:{line}: rule without a '# source:' comment above it")
        for k, r in enumerate(doc.get("rule", []), 1):
            where = f"{name} rule {k} ({r.get('match')!r})"
            if not {"fact", "match", "category", "weight"} <= set(r) <= {
                "fact", "match", "category", "weight", "examples", "counterexamples"
            }:
                errors.append(f"{where}: keys {sorted(r)}")
                continue
            if "examples" in r or "counterexamples" in r:
                key = (r["fact"], r["match"])
                if key in EXAMPLES:
                    errors.append(f"{where}: examples both inline and in check.py")
                EXAMPLES[key] = (list(r.get("examples", [])), list(r.get("counterexamples", [])))
            if r["fact"] not in FACTS:
                errors.append(f"{where}: unknown fact {r['fact']!r}")
            if r["category"] not in CATEGORIES:
                errors.append(f"{where}: unknown category {r['category']!r}")
            w = r["weight"]
            if not isinstance(w, (int, float)) or w == 0 or not (-3.5 <= w <= 3.5):
                errors.append(f"{where}: weight {w!r} not in [-3.5, 3.5] or zero")
            try:
                rx = glob_regex(r["match"])
            except ValueError as e:
                errors.append(f"{where}: bad glob: {e}")
                continue
            rules.append((name, r["fact"], r["match"], r["category"], w, rx))

    # the built-in classify.toml: parses, and cites a source for every rule as these do
    builtin_doc = None
    if os.path.exists(BUILTIN):
        try:
            with open(BUILTIN, "rb") as f:
                builtin_doc = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            errors.append(f"classify.toml: does not parse: {e}")
        for line in source_ok(BUILTIN):
            errors.append(f"classify.toml:{line}: rule without a '# source:' comment above it")

    # duplicates within/across files and against the built-in file (one fact may vote for
    # two categories on purpose, e.g. a lock maker's OUI: lock and hub-bridge)
    seen = {}
    for name, fact, match, category, *_ in rules:
        key = (fact, match.lower(), category)
        if key in seen:
            errors.append(f"{name}: duplicate ({fact}, {match!r}), also in {seen[key]}")
        seen[key] = name
    if builtin_doc is not None:
        for r in builtin_doc.get("rule", []):
            key = (r["fact"], r["match"].lower(), r["category"])
            if key in seen:
                errors.append(f"{seen[key]}: ({r['fact']}, {r['match']!r}) repeats classify.toml")

    # examples
    for name, fact, match, cat, w, rx in rules:
        ex = EXAMPLES.get((fact, match))
        if ex is None:
            # required for the facts a user can rename or a vendor numbers; inline
            # examples of any other fact are checked the same way
            if fact in EXAMPLE_FACTS:
                errors.append(f"{name}: no examples for ({fact}, {match!r})")
            continue
        pos, neg = ex
        if fact in EXAMPLE_FACTS and (len(pos) < 1 or (len(pos) < 2 and fact != "hostname" and "{" not in match and "*" in match)):
            warnings.append(f"{name}: only {len(pos)} positive example(s) for {match!r}")
        for v in pos:
            if not rx.match(v):
                errors.append(f"{name}: {match!r} does not match its example {v!r}")
        for v in neg:
            if rx.match(v):
                errors.append(f"{name}: {match!r} matches its negative example {v!r}")
    for key in EXAMPLES:
        if not any((f, m) == key for _, f, m, *_ in rules):
            warnings.append(f"examples for a rule that does not exist: {key}")

    # cross-brand false positives
    # (a rule whose very pattern is split over two categories on purpose, e.g. a lock
    # platform's cloud: hub first, lock second, is not its own false positive)
    corpus = []
    for name, fact, match, cat, w, rx in rules:
        for v in EXAMPLES.get((fact, match), ([], []))[0]:
            corpus.append((fact, v, cat, match))
    corpus += [(f, v, c, None) for f, v, c in OTHER_BRANDS]
    for fact, v, cat, origin in corpus:
        for name, f2, match, cat2, w, rx in rules:
            if f2 != fact or not rx.match(v) or match == origin:
                continue
            if w > 0 and cat2 != cat and (fact, v, match) not in ALLOWED_OVERLAP:
                errors.append(f"{name}: {match!r} ({cat2}) also matches {v!r}, which is {cat}")

    # the same corpus against the built-in rules: a warning where classify.toml votes
    # another category for a value this knowledge base classifies (rules below the
    # built-in min_score are tie-breakers: they cannot classify a device alone)
    if builtin_doc is not None:
        floor = builtin_doc.get("min_score", 1.0)
        builtin = [(r["fact"], r["match"], r["category"], glob_regex(r["match"]))
                   for r in builtin_doc.get("rule", []) if r["weight"] >= floor]
        for fact, v, cat, _ in corpus:
            if cat == "unknown":
                continue
            for f2, match, cat2, rx in builtin:
                if f2 == fact and cat2 != cat and rx.match(v):
                    warnings.append(f"classify.toml {match!r} ({cat2}) also matches {v!r} ({cat})")

    # vendor globs against the IEEE registry
    orgs = registry_orgs()
    if orgs is None:
        warnings.append("oui-data CSVs not found: vendor globs not checked against the registry")
    else:
        vendor_rules = [(name, match, rx) for name, fact, match, cat, w, rx in rules if fact == "vendor"]
        if builtin_doc is not None:
            vendor_rules += [("classify.toml", r["match"], glob_regex(r["match"]))
                             for r in builtin_doc.get("rule", []) if r["fact"] == "vendor"]
        for name, match, rx in vendor_rules:
            hits = sorted(o for o in orgs if rx.match(o))
            if not hits:
                errors.append(f"{name}: vendor glob {match!r} matches no IEEE registry organisation")
            elif verbose:
                print(f"  {match!r} -> {hits[:4]}{' ...' if len(hits) > 4 else ''}")

    per_file = {}
    for name, *_ in rules:
        per_file[name] = per_file.get(name, 0) + 1
    for name in sorted(per_file):
        print(f"{name}: {per_file[name]} rules")
    print(f"total: {len(rules)} rules in {len(per_file)} files")
    if builtin_doc is not None:
        print(f"classify.toml (built-in): {len(builtin_doc.get('rule', []))} rules")
    for w in warnings:
        print("warning:", w)
    for e in errors:
        print("error:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
