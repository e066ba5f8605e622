//! The simulated ID card through raw APDUs: the command set, every access-control and
//! life-cycle refusal, PIN counters, mutual authentication, secure messaging failures,
//! persistence and malformed input. The card profile is `docs/card-profile.md`.

use apdu::commands::{self, SelectReturn};
use apdu::fcp::{Fcp, FileDescriptor, LifeCycle};
use apdu::layout::{self, LDS1_AID, PIN_REF, PUK_REF};
use apdu::sm::{self, AesKey, KeyRef, SmSession};
use apdu::{Command, Error, RawResponse, StatusWord as Sw, Transport, TransportError};
use cardsim::{CardHandler, Faults, SimCard, SimConfig, SimTransport};
use test_support::data::pattern;

const SERIAL: [u8; 8] = [0x49, 0x44, 0x30, 0x30, 0x30, 0x30, 0x30, 0x31];
const TRANSPORT_PIN: &[u8] = b"1234";
const PUK: &[u8] = b"12345678";

/// A card in the reader and, when authenticated, the host side of its session.
struct Host {
    card: SimCard,
    sm: Option<SmSession>,
}

fn config() -> SimConfig {
    SimConfig {
        serial: Some(SERIAL),
        ..SimConfig::default()
    }
}

impl Host {
    fn new() -> Host {
        Host::with(SimCard::create(None, config()).unwrap())
    }

    fn with(mut card: SimCard) -> Host {
        card.power_on();
        Host { card, sm: None }
    }

    fn raw(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.card.process_apdu(bytes)
    }

    /// Sends in plain (which also closes any session on the card).
    fn plain(&mut self, cmd: &Command) -> RawResponse {
        self.sm = None;
        RawResponse::parse(&self.raw(&cmd.to_bytes().unwrap())).unwrap()
    }

    /// Sends through the session when there is one, else in plain.
    fn send(&mut self, cmd: &Command) -> RawResponse {
        match self.sm.as_mut() {
            None => self.plain(cmd),
            Some(sm) => {
                let wrapped = sm.wrap_command(cmd).unwrap();
                let resp =
                    RawResponse::parse(&self.card.process_apdu(&wrapped.to_bytes().unwrap()))
                        .unwrap();
                self.sm.as_mut().unwrap().unwrap_response(&resp).unwrap()
            }
        }
    }

    fn sw(&mut self, cmd: &Command) -> Sw {
        self.send(cmd).sw
    }

    fn ok(&mut self, cmd: &Command) -> Vec<u8> {
        let r = self.send(cmd);
        assert_eq!(r.sw, Sw::Success, "{cmd:?}");
        r.data
    }

    fn select_app(&mut self) -> Sw {
        self.sw(&commands::select_df_name(&LDS1_AID, SelectReturn::Nothing).unwrap())
    }

    /// GET CHALLENGE + MUTUAL AUTHENTICATE in plain with the card key diversified from `master`.
    fn try_auth(&mut self, key_ref: KeyRef, master: &AesKey) -> Sw {
        let serial = self.card.serial();
        let key = sm::diversify(master, key_ref, &serial);
        let rnd_ic = self.plain(&commands::get_challenge(16).unwrap());
        assert_eq!(rnd_ic.sw, Sw::Success);
        let rnd_ic: [u8; 16] = rnd_ic.data.try_into().unwrap();
        let auth = sm::host_authenticate_step(&key, &[0x5A; 16], &rnd_ic);
        let mut cmd = commands::mutual_authenticate(auth.command_data(), 16).unwrap();
        cmd.p2 = key_ref.byte();
        let resp = self.plain(&cmd);
        if resp.sw == Sw::Success {
            self.sm = Some(auth.verify_card(&resp.data).unwrap());
        }
        resp.sw
    }

    fn perso(&mut self) {
        assert_eq!(
            self.try_auth(
                KeyRef::Personalization,
                &cardsim::fixtures::test_perso_master()
            ),
            Sw::Success
        );
    }

    fn terminal(&mut self) {
        assert_eq!(
            self.try_auth(KeyRef::Terminal, &cardsim::fixtures::test_terminal_master()),
            Sw::Success
        );
    }

    fn lcs(&mut self) -> u8 {
        let r = self.plain(&commands::get_data(layout::DO_LCS, 1).unwrap());
        assert_eq!(r.sw, Sw::Success);
        r.data[0]
    }

    fn create_ef(&mut self, fid: u16, size: u32) -> Sw {
        self.sw(&commands::create_file(&Fcp::transparent_ef(fid, size)))
    }

    fn select_ef(&mut self, fid: u16) -> Sw {
        self.sw(&commands::select_fid(fid, SelectReturn::Nothing))
    }

    /// Personalizes EF.COM, DG1, DG2, DG3 and EF.SOD, sets transport PIN and PUK.
    fn personalize(&mut self) {
        self.select_app();
        self.perso();
        for (fid, data) in files() {
            assert_eq!(self.create_ef(fid, data.len() as u32), Sw::Success);
            self.ok(&commands::update_binary(0, &data).unwrap());
        }
        self.ok(&commands::change_reference_data(PIN_REF, &[], TRANSPORT_PIN).unwrap());
        self.ok(&commands::change_reference_data(PUK_REF, &[], PUK).unwrap());
    }

    /// Personalizes and leaves the line: the card is operational, deactivated.
    fn issued(&mut self) {
        self.personalize();
        self.select_app();
        self.ok(&commands::deactivate_file(None));
        self.sm = None;
    }

    /// Issued, then delivered: holder PIN set and card activated under a terminal session.
    fn delivered(&mut self) {
        self.issued();
        self.select_app();
        self.terminal();
        self.ok(&commands::change_reference_data(PIN_REF, TRANSPORT_PIN, b"2468").unwrap());
        self.select_app();
        self.ok(&commands::activate_file(None));
        self.sm = None;
    }
}

fn files() -> Vec<(u16, Vec<u8>)> {
    vec![
        (layout::EF_COM, pattern(24, 1)),
        (layout::EF_DG1, pattern(93, 2)),
        (layout::EF_DG2, pattern(3000, 3)),
        (layout::EF_DG3, pattern(700, 4)),
        (layout::EF_SOD, pattern(1200, 5)),
    ]
}

fn read(h: &mut Host, fid: u16, ne: usize) -> RawResponse {
    assert!(
        matches!(h.select_ef(fid), Sw::Success | Sw::FileDeactivated),
        "select {fid:04X}"
    );
    h.send(&commands::read_binary(0, ne).unwrap())
}

// ---------------------------------------------------------------------------------------------
// Fresh card, GET DATA, SELECT.

#[test]
fn fresh_card_is_in_creation_with_an_empty_application() {
    let mut h = Host::new();
    let serial = h.plain(&commands::get_data(layout::DO_SERIAL, 8).unwrap());
    assert_eq!(
        (serial.sw, serial.data.as_slice()),
        (Sw::Success, &SERIAL[..])
    );
    assert_eq!(h.lcs(), 0x01);
    let list = h.plain(&commands::get_data(layout::DO_FILE_LIST, 256).unwrap());
    assert_eq!((list.sw, list.data.len()), (Sw::Success, 0));
    let r = h.plain(&commands::select_df_name(&LDS1_AID, SelectReturn::Fcp).unwrap());
    assert_eq!(r.sw, Sw::Success);
    let fcp = Fcp::parse(&r.data).unwrap();
    assert!(fcp.descriptor.is_df());
    assert_eq!(fcp.df_name.as_deref(), Some(&LDS1_AID[..]));
    assert_eq!(fcp.fid, Some(layout::APP_DF_FID));
    assert_eq!(fcp.life_cycle, Some(LifeCycle::Creation));
    assert_eq!(h.card.life_cycle(), LifeCycle::Creation);
}

#[test]
fn serials_are_unique_or_seeded() {
    let a = SimCard::create(None, SimConfig::default())
        .unwrap()
        .serial();
    let b = SimCard::create(None, SimConfig::default())
        .unwrap()
        .serial();
    assert_ne!(a, b);
    let seeded = |seed| {
        SimCard::create(
            None,
            SimConfig {
                seed: Some(seed),
                ..SimConfig::default()
            },
        )
        .unwrap()
        .serial()
    };
    assert_eq!(seeded(7), seeded(7));
    assert_ne!(seeded(7), seeded(8));
}

#[test]
fn get_data_and_get_challenge_parameters() {
    let mut h = Host::new();
    assert_eq!(
        h.sw(&Command::new(0, 0xCA, 0x01, 0x09).with_ne(256)),
        Sw::ReferenceDataNotFound
    );
    assert_eq!(
        h.sw(&Command::new(0, 0xCA, 0x01, 0x01).with_ne(4)),
        Sw::WrongLe { exact_len: 8 }
    );
    assert_eq!(
        h.sw(&Command::new(0, 0x84, 0, 0).with_ne(8)),
        Sw::WrongLe { exact_len: 16 }
    );
    assert_eq!(h.sw(&Command::new(0, 0x84, 0, 0)), Sw::WrongLength);
    assert_eq!(
        h.sw(&Command::new(0, 0x84, 1, 0).with_ne(16)),
        Sw::IncorrectP1P2
    );
    let a = h.ok(&commands::get_challenge(16).unwrap());
    let b = h.ok(&commands::get_challenge(16).unwrap());
    assert_eq!(a.len(), 16);
    assert_ne!(a, b);
}

#[test]
fn select_by_fid_path_name_parent_and_fcp() {
    let mut h = Host::new();
    h.personalize();
    // Path from the MF, then the EF's FCP.
    let r = h.send(
        &commands::select_path(&[layout::APP_DF_FID, layout::EF_DG1], SelectReturn::Fcp).unwrap(),
    );
    assert_eq!(r.sw, Sw::Success);
    let fcp = Fcp::parse(&r.data).unwrap();
    assert_eq!(fcp.descriptor, FileDescriptor::TRANSPARENT_EF);
    assert_eq!(
        (fcp.fid, fcp.size, fcp.sfi),
        (Some(layout::EF_DG1), Some(93), Some(1))
    );
    assert_eq!(fcp.life_cycle, Some(LifeCycle::Activated));
    // The raw FCP carries 82, 83, 80, 88 (SFI << 3) and 8A.
    assert_eq!(&r.data[..2], &[0x62, r.data.len() as u8 - 2]);
    assert!(r.data.windows(3).any(|w| w == [0x88, 0x01, 0x08]));
    // Parent (P1 = 03) of the application is the MF.
    assert_eq!(h.sw(&Command::new(0, 0xA4, 0x03, 0x0C)), Sw::Success);
    let r = h.send(&Command::new(0, 0xA4, 0x00, 0x04).with_ne(256));
    assert_eq!(Fcp::parse(&r.data).unwrap().fid, Some(0x3F00));
    assert_eq!(h.sw(&Command::new(0, 0xA4, 0x03, 0x0C)), Sw::FileNotFound);
    // Child DF by FID (P1 = 01), then EF by FID (P1 = 02), path from current DF (P1 = 09).
    assert_eq!(
        h.sw(&Command::new(0, 0xA4, 0x01, 0x0C).with_data([0x5F, 0x01])),
        Sw::Success
    );
    assert_eq!(
        h.sw(&Command::new(0, 0xA4, 0x02, 0x0C).with_data([0x01, 0x1E])),
        Sw::Success
    );
    assert_eq!(
        h.sw(&Command::new(0, 0xA4, 0x09, 0x0C).with_data([0x01, 0x1D])),
        Sw::Success
    );
    // An EF is not a DF and vice versa.
    assert_eq!(
        h.sw(&Command::new(0, 0xA4, 0x01, 0x0C).with_data([0x01, 0x01])),
        Sw::FileNotFound
    );
    // Truncated DF name selects the application too; MF by empty P1 = 00.
    assert_eq!(
        h.sw(&Command::new(0, 0xA4, 0x04, 0x0C).with_data(&LDS1_AID[..5])),
        Sw::Success
    );
    assert_eq!(h.sw(&Command::new(0, 0xA4, 0x00, 0x0C)), Sw::Success);
    // Errors.
    assert_eq!(h.select_ef(0x0199), Sw::FileNotFound);
    assert_eq!(
        h.sw(&Command::new(0, 0xA4, 0x04, 0x0C).with_data([0xA0, 0, 0, 9])),
        Sw::FileNotFound
    );
    assert_eq!(h.sw(&Command::new(0, 0xA4, 0x05, 0x0C)), Sw::IncorrectP1P2);
    assert_eq!(h.sw(&Command::new(0, 0xA4, 0x00, 0x08)), Sw::IncorrectP1P2);
    assert_eq!(
        h.sw(&Command::new(0, 0xA4, 0x00, 0x0C).with_data([1, 2, 3])),
        Sw::WrongLength
    );
    assert_eq!(
        h.sw(&Command::new(0, 0xA4, 0x08, 0x0C).with_data([0x5F])),
        Sw::WrongLength
    );
}

// ---------------------------------------------------------------------------------------------
// Personalization: CREATE, UPDATE, READ, DELETE.

#[test]
fn personalization_writes_and_reads_back_every_file() {
    let mut h = Host::new();
    h.personalize();
    assert_eq!(
        h.lcs(),
        0x03,
        "the first write moves creation to initialisation"
    );
    h.select_app();
    h.perso();
    for (fid, data) in files() {
        let r = read(&mut h, fid, data.len());
        assert_eq!((r.sw, &r.data), (Sw::Success, &data), "{fid:04X}");
        assert_eq!(h.card.app_file(fid), Some(data));
    }
    let list = h
        .plain(&commands::get_data(layout::DO_FILE_LIST, 256).unwrap())
        .data;
    assert_eq!(
        list,
        [0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x1D, 0x01, 0x1E]
    );
}

#[test]
fn read_binary_offsets_sfi_and_end_of_file() {
    let mut h = Host::new();
    h.personalize();
    let dg1 = pattern(93, 2);
    // SFI addressing (P1 = 80 | SFI) from the application DF.
    h.select_app();
    let r = h.send(&commands::read_binary_sfi(0x01, 10, 5).unwrap());
    assert_eq!((r.sw, r.data.as_slice()), (Sw::Success, &dg1[10..15]));
    let com = pattern(24, 1);
    let r = h.send(&commands::read_binary_sfi(0x1E, 0, 24).unwrap());
    assert_eq!(r.data, com);
    // Reading past the end: the bytes there are, 6282.
    // The SFI read made EF.COM (24 bytes) current: offset 90 is beyond it.
    assert_eq!(h.sw(&commands::read_binary(90, 10).unwrap()), Sw::WrongP1P2);
    assert_eq!(h.select_ef(layout::EF_DG1), Sw::Success);
    let r = h.send(&commands::read_binary(90, 10).unwrap());
    assert_eq!((r.sw, r.data.as_slice()), (Sw::EndOfFile, &dg1[90..]));
    // Offset beyond the end: 6B00.
    assert_eq!(h.sw(&commands::read_binary(94, 1).unwrap()), Sw::WrongP1P2);
    // A read without Le, an unknown SFI, an invalid P1.
    assert_eq!(h.sw(&Command::new(0, 0xB0, 0, 0)), Sw::WrongLength);
    assert_eq!(
        h.sw(&Command::new(0, 0xB0, 0x85, 0).with_ne(1)),
        Sw::FileNotFound
    );
    assert_eq!(
        h.sw(&Command::new(0, 0xB0, 0xA1, 0).with_ne(1)),
        Sw::IncorrectP1P2
    );
    // Extended length: the whole of DG2 in one read.
    assert_eq!(h.select_ef(layout::EF_DG2), Sw::Success);
    let r = h.send(&commands::read_binary(0, 3000).unwrap());
    assert_eq!((r.sw, r.data), (Sw::Success, pattern(3000, 3)));
    // No current EF after selecting a DF.
    h.select_app();
    assert_eq!(
        h.sw(&commands::read_binary(0, 1).unwrap()),
        Sw::CommandNotAllowed
    );
    // Odd INS with an SFI in P2: the data comes in a 53 object.
    let r = h.send(
        &Command::new(0, 0xB1, 0, 0x01)
            .with_data([0x54, 0x01, 0x00])
            .with_ne(10),
    );
    assert_eq!(
        (r.sw, &r.data[..2], &r.data[2..]),
        (Sw::Success, &[0x53, 8][..], &dg1[..8])
    );
}

#[test]
fn update_binary_enforces_the_declared_size() {
    let mut h = Host::new();
    h.select_app();
    h.perso();
    assert_eq!(h.create_ef(layout::EF_DG1, 10), Sw::Success);
    assert_eq!(
        h.sw(&commands::update_binary(5, &[1; 6]).unwrap()),
        Sw::NotEnoughMemory
    );
    assert_eq!(
        h.sw(&commands::update_binary(11, &[1]).unwrap()),
        Sw::WrongP1P2
    );
    assert_eq!(h.sw(&Command::new(0, 0xD6, 0, 0)), Sw::WrongLength);
    assert_eq!(
        h.card.app_file(layout::EF_DG1),
        Some(vec![0; 10]),
        "refused writes change nothing"
    );
    assert_eq!(
        h.sw(&commands::update_binary(4, &[1; 6]).unwrap()),
        Sw::Success
    );
    assert_eq!(
        h.sw(&commands::update_binary_sfi(1, 0, &[9, 9]).unwrap()),
        Sw::Success
    );
    assert_eq!(
        h.card.app_file(layout::EF_DG1),
        Some(vec![9, 9, 0, 0, 1, 1, 1, 1, 1, 1])
    );
    // A command data field beyond the card's limit is refused before anything else.
    let big = Command::new(0, 0xD6, 0, 0).with_data(vec![0; 5000]);
    assert_eq!(
        RawResponse::parse(&h.raw(&big.to_bytes().unwrap()))
            .unwrap()
            .sw,
        Sw::WrongLength
    );
}

#[test]
fn odd_ins_reaches_offsets_beyond_32k() {
    let mut h = Host::new();
    h.select_app();
    h.perso();
    assert_eq!(h.create_ef(0x0105, 40_000), Sw::Success);
    let data = pattern(100, 9);
    assert_eq!(
        h.sw(&commands::update_binary_odd(39_000, &data).unwrap()),
        Sw::Success
    );
    let r = h.send(&commands::read_binary_odd(39_000, 102).unwrap());
    assert_eq!(r.sw, Sw::Success);
    assert_eq!(&r.data[..2], &[0x53, 100]);
    assert_eq!(&r.data[2..], &data[..]);
    let r = h.send(&commands::read_binary_odd(39_990, 104).unwrap());
    assert_eq!((r.sw, &r.data[2..]), (Sw::EndOfFile, &[0u8; 10][..]));
    assert_eq!(
        h.sw(&commands::update_binary_odd(39_999, &[1, 2]).unwrap()),
        Sw::NotEnoughMemory
    );
    assert_eq!(
        h.sw(&Command::new(0, 0xB1, 0, 0).with_data([0x53, 0]).with_ne(8)),
        Sw::IncorrectData
    );
}

#[test]
fn create_file_checks_fcp_clashes_and_memory() {
    let small = SimConfig {
        memory_capacity: 4096,
        ..config()
    };
    let mut h = Host::with(SimCard::create(None, small).unwrap());
    h.select_app();
    h.perso();
    assert_eq!(h.create_ef(layout::EF_DG1, 100), Sw::Success);
    assert_eq!(h.select_app(), Sw::Success);
    assert_eq!(h.create_ef(layout::EF_DG1, 100), Sw::FileAlreadyExists);
    // 0121 has the default SFI 01, taken by DG1.
    assert_eq!(h.create_ef(0x0121, 10), Sw::FileAlreadyExists);
    // An explicit, empty 88 means "no SFI".
    let mut no_sfi = Fcp::transparent_ef(0x0121, 10);
    no_sfi
        .other
        .push(apdu::tlv::Tlv::primitive(apdu::tlv::Tag(0x88), Vec::new()));
    assert_eq!(h.sw(&commands::create_file(&no_sfi)), Sw::Success);
    h.select_app();
    assert_eq!(h.create_ef(0x0110, 8000), Sw::NotEnoughMemory);
    assert_eq!(h.create_ef(0x0111, 0x1_0000), Sw::NotEnoughMemory);
    assert_eq!(
        h.sw(&Command::new(0, 0xE0, 0, 0).with_data([0x62, 0x03, 0x82, 0x01])),
        Sw::IncorrectData
    );
    assert_eq!(
        h.sw(&Command::new(0, 0xE0, 0, 0).with_data([0x62, 0x03, 0x82, 0x01, 0x01])),
        Sw::IncorrectData
    );
    let mut record = Fcp::transparent_ef(0x0112, 10);
    record.descriptor = FileDescriptor(0x02);
    assert_eq!(
        h.sw(&commands::create_file(&record)),
        Sw::FunctionNotSupported
    );
    assert_eq!(
        h.sw(&commands::create_file(&Fcp::transparent_ef(0x3F00, 10))),
        Sw::IncorrectData
    );
    assert_eq!(
        h.sw(&Command::new(0, 0xE0, 1, 0).with_data(Fcp::transparent_ef(0x0113, 1).to_bytes())),
        Sw::IncorrectP1P2
    );
    // A DF with a name, and an EF inside it.
    h.select_app();
    assert_eq!(
        h.sw(&commands::create_file(&Fcp::df(
            0x5F02,
            Some(&[0xD2, 0x76, 0x01])
        ))),
        Sw::Success
    );
    assert_eq!(h.create_ef(0x0001, 16), Sw::Success);
    assert_eq!(
        h.sw(&commands::create_file(&Fcp::df(0x5F03, Some(&LDS1_AID)))),
        Sw::FileAlreadyExists
    );
}

#[test]
fn delete_file_frees_memory_and_protects_the_application() {
    let small = SimConfig {
        memory_capacity: 4096,
        ..config()
    };
    let mut h = Host::with(SimCard::create(None, small).unwrap());
    h.select_app();
    h.perso();
    assert_eq!(h.create_ef(0x0102, 3000), Sw::Success);
    h.select_app();
    assert_eq!(h.create_ef(0x0103, 3000), Sw::NotEnoughMemory);
    assert_eq!(h.sw(&commands::delete_file(Some(0x0102))), Sw::Success);
    assert_eq!(h.select_ef(0x0102), Sw::FileNotFound);
    assert_eq!(h.create_ef(0x0103, 3000), Sw::Success);
    // The current EF (0103) by empty data.
    assert_eq!(h.sw(&commands::delete_file(None)), Sw::Success);
    assert_eq!(h.card.app_file(0x0103), None);
    assert_eq!(h.sw(&commands::delete_file(Some(0x0199))), Sw::FileNotFound);
    h.select_app();
    assert_eq!(
        h.sw(&commands::delete_file(None)),
        Sw::ConditionsNotSatisfied
    );
    assert_eq!(h.sw(&Command::new(0, 0xA4, 0, 0x0C)), Sw::Success);
    assert_eq!(
        h.sw(&commands::delete_file(None)),
        Sw::ConditionsNotSatisfied
    );
}

// ---------------------------------------------------------------------------------------------
// Access control.

#[test]
fn writes_need_the_personalization_session() {
    let mut h = Host::new();
    h.personalize();
    h.sm = None;
    // No session.
    h.select_app();
    assert_eq!(h.create_ef(0x0105, 10), Sw::SecurityStatusNotSatisfied);
    assert_eq!(h.select_ef(layout::EF_DG1), Sw::Success);
    assert_eq!(
        h.sw(&commands::update_binary(0, &[1]).unwrap()),
        Sw::SecurityStatusNotSatisfied
    );
    assert_eq!(
        h.sw(&commands::delete_file(None)),
        Sw::SecurityStatusNotSatisfied
    );
    assert_eq!(
        h.sw(&commands::deactivate_file(None)),
        Sw::SecurityStatusNotSatisfied
    );
    assert_eq!(
        h.sw(&commands::change_reference_data(PIN_REF, &[], b"9999").unwrap()),
        Sw::SecurityStatusNotSatisfied
    );
    // A terminal session reads but cannot write.
    h.select_app();
    h.terminal();
    assert_eq!(h.create_ef(0x0105, 10), Sw::SecurityStatusNotSatisfied);
    assert_eq!(h.select_ef(layout::EF_DG1), Sw::Success);
    assert_eq!(
        h.sw(&commands::update_binary(0, &[1]).unwrap()),
        Sw::SecurityStatusNotSatisfied
    );
    assert_eq!(
        h.sw(&commands::delete_file(None)),
        Sw::SecurityStatusNotSatisfied
    );
    assert_eq!(
        h.sw(&commands::change_reference_data(PUK_REF, &[], b"87654321").unwrap()),
        Sw::SecurityStatusNotSatisfied
    );
    h.select_app();
    assert_eq!(
        h.sw(&commands::deactivate_file(None)),
        Sw::SecurityStatusNotSatisfied
    );
    assert_eq!(h.card.app_file(layout::EF_DG1), Some(pattern(93, 2)));
}

#[test]
fn reads_of_data_groups_need_a_session_and_dg3_the_terminal() {
    let mut h = Host::new();
    h.personalize();
    // Before issuance the personalization session reads DG3 (to check what it wrote).
    let r = read(&mut h, layout::EF_DG3, 700);
    assert_eq!(r.sw, Sw::Success);
    // Without a session: 6982 for every file of the application.
    h.sm = None;
    h.select_app();
    for (fid, _) in files() {
        assert_eq!(
            read(&mut h, fid, 1).sw,
            Sw::SecurityStatusNotSatisfied,
            "{fid:04X}"
        );
    }
    assert_eq!(
        h.sw(&commands::read_binary_sfi(1, 0, 1).unwrap()),
        Sw::SecurityStatusNotSatisfied
    );
    // A file under the MF (created by the perso session) is public.
    h.plain(&commands::select_mf());
    h.perso();
    assert_eq!(h.create_ef(0x011C, 4), Sw::Success);
    h.sm = None;
    assert_eq!(read(&mut h, 0x011C, 4).sw, Sw::Success);
    // After delivery the personalization session no longer reads DG3, the terminal does.
    let mut h = Host::new();
    h.delivered();
    h.select_app();
    h.perso();
    assert_eq!(read(&mut h, layout::EF_DG1, 93).sw, Sw::Success);
    assert_eq!(
        read(&mut h, layout::EF_DG3, 700).sw,
        Sw::SecurityStatusNotSatisfied
    );
    h.select_app();
    h.terminal();
    let r = read(&mut h, layout::EF_DG3, 700);
    assert_eq!((r.sw, r.data), (Sw::Success, pattern(700, 4)));
}

#[test]
fn dg4_iris_is_read_like_dg3_only_under_the_terminal_session() {
    let mut h = Host::new();
    h.select_app();
    h.perso();
    assert_eq!(h.create_ef(layout::EF_DG4, 300), Sw::Success);
    h.ok(&commands::update_binary(0, &pattern(300, 6)).unwrap());
    // Before issuance the personalization session reads it back.
    let r = read(&mut h, layout::EF_DG4, 300);
    assert_eq!((r.sw, r.data), (Sw::Success, pattern(300, 6)));
    h.delivered();
    // Plain (no session): refused, as DG3.
    h.select_app();
    for fid in [layout::EF_DG3, layout::EF_DG4] {
        assert_eq!(
            read(&mut h, fid, 1).sw,
            Sw::SecurityStatusNotSatisfied,
            "{fid:04X}"
        );
    }
    // The personalization session after issuance: DG1 yes, DG3 and DG4 no.
    h.select_app();
    h.perso();
    assert_eq!(read(&mut h, layout::EF_DG1, 93).sw, Sw::Success);
    for fid in [layout::EF_DG3, layout::EF_DG4] {
        assert_eq!(
            read(&mut h, fid, 1).sw,
            Sw::SecurityStatusNotSatisfied,
            "{fid:04X}"
        );
    }
    // The terminal session reads it.
    h.select_app();
    h.terminal();
    let r = read(&mut h, layout::EF_DG4, 300);
    assert_eq!((r.sw, r.data), (Sw::Success, pattern(300, 6)));
}

// ---------------------------------------------------------------------------------------------
// Life cycle.

#[test]
fn leaving_the_line_needs_the_perso_session_and_both_secrets() {
    let mut h = Host::new();
    h.select_app();
    h.perso();
    assert_eq!(
        h.sw(&commands::deactivate_file(None)),
        Sw::ConditionsNotSatisfied,
        "no PIN yet"
    );
    h.ok(&commands::change_reference_data(PIN_REF, &[], TRANSPORT_PIN).unwrap());
    h.select_app();
    assert_eq!(
        h.sw(&commands::deactivate_file(None)),
        Sw::ConditionsNotSatisfied,
        "no PUK yet"
    );
    h.ok(&commands::change_reference_data(PUK_REF, &[], PUK).unwrap());
    h.select_app();
    // Activation skips the delivery: refused before the card left the line.
    assert_eq!(
        h.sw(&commands::activate_file(None)),
        Sw::ConditionsNotSatisfied
    );
    h.ok(&commands::deactivate_file(None));
    assert_eq!(h.lcs(), 0x04);
    assert_eq!(h.card.life_cycle(), LifeCycle::Deactivated);
    // SELECT of the deactivated application warns 6283.
    assert_eq!(h.select_app(), Sw::FileDeactivated);
}

#[test]
fn a_deactivated_card_only_does_the_delivery_steps() {
    let mut h = Host::new();
    h.issued();
    // Allowed: SELECT, GET DATA, GET CHALLENGE.
    assert_eq!(h.select_app(), Sw::FileDeactivated);
    assert_eq!(
        h.plain(&commands::get_data(layout::DO_SERIAL, 8).unwrap())
            .sw,
        Sw::Success
    );
    // Refused without a terminal session: reads, PIN, activation; always: writes, RESET RETRY
    // COUNTER, the personalization key.
    assert_eq!(
        read(&mut h, layout::EF_DG1, 1).sw,
        Sw::ConditionsNotSatisfied
    );
    assert_eq!(
        read(&mut h, layout::EF_COM, 1).sw,
        Sw::ConditionsNotSatisfied
    );
    assert_eq!(
        h.sw(&commands::verify(PIN_REF, TRANSPORT_PIN).unwrap()),
        Sw::ConditionsNotSatisfied
    );
    assert_eq!(
        h.sw(&commands::change_reference_data(PIN_REF, TRANSPORT_PIN, b"2468").unwrap()),
        Sw::ConditionsNotSatisfied
    );
    assert_eq!(
        h.sw(&commands::reset_retry_counter(PIN_REF, PUK, b"2468").unwrap()),
        Sw::ConditionsNotSatisfied
    );
    h.select_app();
    assert_eq!(
        h.sw(&commands::activate_file(None)),
        Sw::ConditionsNotSatisfied
    );
    assert_eq!(h.create_ef(0x0105, 1), Sw::ConditionsNotSatisfied);
    assert_eq!(
        h.sw(&commands::update_binary_sfi(1, 0, &[1]).unwrap()),
        Sw::ConditionsNotSatisfied
    );
    assert_eq!(
        h.sw(&commands::delete_file(Some(layout::EF_DG1))),
        Sw::ConditionsNotSatisfied
    );
    assert_eq!(
        h.try_auth(
            KeyRef::Personalization,
            &cardsim::fixtures::test_perso_master()
        ),
        Sw::ConditionsNotSatisfied
    );
    // With the terminal session: reads work, writes still do not, the transport PIN must be
    // replaced before activation.
    h.select_app();
    h.terminal();
    let r = read(&mut h, layout::EF_DG3, 700);
    assert_eq!((r.sw, r.data), (Sw::Success, pattern(700, 4)));
    assert_eq!(
        h.sw(&commands::update_binary_sfi(1, 0, &[1]).unwrap()),
        Sw::ConditionsNotSatisfied
    );
    assert_eq!(
        h.sw(&commands::reset_retry_counter(PIN_REF, PUK, b"2468").unwrap()),
        Sw::ConditionsNotSatisfied
    );
    h.select_app();
    assert_eq!(
        h.sw(&commands::activate_file(None)),
        Sw::ConditionsNotSatisfied,
        "transport PIN"
    );
    // The holder sets a PIN after proving the transport PIN (VERIFY, then P1 = 01).
    h.ok(&commands::verify(PIN_REF, TRANSPORT_PIN).unwrap());
    h.ok(&commands::change_reference_data(PIN_REF, &[], b"13579").unwrap());
    h.select_app();
    h.ok(&commands::activate_file(None));
    assert_eq!(h.lcs(), 0x05);
    assert_eq!(h.card.life_cycle(), LifeCycle::Activated);
}

#[test]
fn an_activated_card_refuses_writes_and_can_be_suspended() {
    let mut h = Host::new();
    h.delivered();
    assert_eq!(h.select_app(), Sw::Success);
    h.perso();
    assert_eq!(h.create_ef(0x0105, 1), Sw::ConditionsNotSatisfied);
    assert_eq!(
        h.sw(&commands::update_binary_sfi(1, 0, &[1]).unwrap()),
        Sw::ConditionsNotSatisfied
    );
    assert_eq!(
        h.sw(&commands::delete_file(Some(layout::EF_DG1))),
        Sw::ConditionsNotSatisfied
    );
    assert_eq!(
        h.sw(&commands::change_reference_data(PIN_REF, &[], b"0000").unwrap()),
        Sw::SecurityStatusNotSatisfied
    );
    // Activating again is a no-op; deactivating needs a session.
    h.select_app();
    h.sm = None;
    assert_eq!(
        h.sw(&commands::deactivate_file(None)),
        Sw::SecurityStatusNotSatisfied
    );
    h.terminal();
    h.select_app();
    h.ok(&commands::activate_file(None));
    h.ok(&commands::deactivate_file(None));
    assert_eq!(h.lcs(), 0x04);
}

#[test]
fn a_terminated_card_refuses_everything_but_its_serial_and_life_cycle() {
    let mut h = Host::new();
    h.delivered();
    h.select_app();
    assert_eq!(
        h.sw(&commands::terminate_df()),
        Sw::SecurityStatusNotSatisfied
    );
    h.terminal();
    h.select_app();
    h.ok(&commands::terminate_df());
    assert_eq!(h.lcs(), 0x0C);
    assert!(!h.card.has_session(), "the plain GET DATA closed it");
    assert_eq!(
        h.plain(&commands::get_data(layout::DO_SERIAL, 8).unwrap())
            .data,
        SERIAL
    );
    for cmd in [
        commands::select_df_name(&LDS1_AID, SelectReturn::Nothing).unwrap(),
        commands::select_mf(),
        commands::get_data(layout::DO_FILE_LIST, 256).unwrap(),
        commands::get_challenge(16).unwrap(),
        commands::read_binary_sfi(1, 0, 1).unwrap(),
        commands::verify(PIN_REF, b"2468").unwrap(),
        commands::activate_file(None),
        commands::terminate_card_usage(),
        Command::new(0, 0x12, 0, 0),
    ] {
        assert_eq!(h.plain(&cmd).sw, Sw::ConditionsNotSatisfied, "{cmd:?}");
    }
    // Secure messaging gets the same answer, in plain.
    let sm_cmd = Command::new(0x0C, 0xB0, 0x81, 0)
        .with_data([0x97, 0x01, 0x01, 0x8E, 0x08, 0, 0, 0, 0, 0, 0, 0, 0])
        .with_ne(256);
    assert_eq!(h.raw(&sm_cmd.to_bytes().unwrap()), [0x69, 0x85]);
}

#[test]
fn terminate_card_usage_and_file_life_cycle() {
    let mut h = Host::new();
    h.personalize();
    // EF life cycle: deactivate DG1 (SELECT warns 6283, READ refused), activate, terminate.
    h.select_app();
    h.ok(&commands::deactivate_file(Some(layout::EF_DG1)));
    assert_eq!(h.select_ef(layout::EF_DG1), Sw::FileDeactivated);
    assert_eq!(
        h.sw(&commands::read_binary(0, 1).unwrap()),
        Sw::ConditionsNotSatisfied
    );
    assert_eq!(
        h.sw(&commands::update_binary(0, &[1]).unwrap()),
        Sw::ConditionsNotSatisfied
    );
    h.ok(&commands::activate_file(None));
    assert_eq!(h.sw(&commands::read_binary(0, 1).unwrap()), Sw::Success);
    h.ok(&commands::terminate_ef(None));
    assert_eq!(h.select_ef(layout::EF_DG1), Sw::Other(0x6285));
    assert_eq!(
        h.sw(&commands::activate_file(None)),
        Sw::ConditionsNotSatisfied
    );
    assert_eq!(
        h.sw(&commands::terminate_ef(Some(layout::APP_DF_FID))),
        Sw::IncompatibleFileStructure
    );
    // TERMINATE CARD USAGE needs a session.
    h.sm = None;
    assert_eq!(
        h.sw(&commands::terminate_card_usage()),
        Sw::SecurityStatusNotSatisfied
    );
    h.perso();
    h.ok(&commands::terminate_card_usage());
    assert_eq!(h.lcs(), 0x0C);
    assert_eq!(
        h.plain(&commands::select_mf()).sw,
        Sw::ConditionsNotSatisfied
    );
}

// ---------------------------------------------------------------------------------------------
// PIN and PUK.

#[test]
fn pin_counters_block_and_the_puk_unblocks() {
    let mut h = Host::new();
    h.delivered(); // holder PIN 2468
    h.card.power_on(); // the PIN status from the delivery is gone
    h.select_app();
    assert_eq!(
        h.sw(&commands::verify_status(PIN_REF)),
        Sw::WrongPin { tries_left: 3 }
    );
    assert_eq!(
        h.sw(&commands::verify(PIN_REF, b"0000").unwrap()),
        Sw::WrongPin { tries_left: 2 }
    );
    assert_eq!(
        h.sw(&commands::verify(PIN_REF, b"0000").unwrap()),
        Sw::WrongPin { tries_left: 1 }
    );
    assert_eq!(h.card.tries_left().0, 1);
    assert_eq!(
        h.sw(&commands::verify(PIN_REF, b"0000").unwrap()),
        Sw::AuthenticationBlocked
    );
    assert_eq!(
        h.sw(&commands::verify(PIN_REF, b"2468").unwrap()),
        Sw::AuthenticationBlocked
    );
    assert_eq!(
        h.sw(&commands::verify_status(PIN_REF)),
        Sw::AuthenticationBlocked
    );
    assert_eq!(
        h.sw(&commands::change_reference_data(PIN_REF, b"2468", b"1111").unwrap()),
        Sw::AuthenticationBlocked
    );
    // Wrong PUK counts down its own counter.
    assert_eq!(
        h.sw(&commands::reset_retry_counter(PIN_REF, b"00000000", b"1111").unwrap()),
        Sw::WrongPin { tries_left: 9 }
    );
    // Malformed new PIN: refused before the PUK is tried.
    assert_eq!(
        h.sw(&commands::reset_retry_counter(PIN_REF, PUK, b"11a1").unwrap()),
        Sw::IncorrectData
    );
    assert_eq!(h.card.tries_left(), (0, 9));
    // PUK only (P1 = 01) resets the counter and keeps the PIN.
    assert_eq!(
        h.sw(&Command::new(0, 0x2C, 0x01, PIN_REF).with_data(PUK)),
        Sw::Success
    );
    assert_eq!(h.card.tries_left(), (3, 10));
    h.ok(&commands::verify(PIN_REF, b"2468").unwrap());
    assert_eq!(h.sw(&commands::verify_status(PIN_REF)), Sw::Success);
    // PUK and a new PIN.
    h.ok(&commands::reset_retry_counter(PIN_REF, PUK, b"97531").unwrap());
    h.ok(&commands::verify(PIN_REF, b"97531").unwrap());
    // CHANGE REFERENCE DATA with the old value: wrong old counts, right old changes.
    assert_eq!(
        h.sw(&commands::change_reference_data(PIN_REF, b"97530", b"1212").unwrap()),
        Sw::WrongPin { tries_left: 2 }
    );
    h.ok(&commands::change_reference_data(PIN_REF, b"97531", b"1212").unwrap());
    assert_eq!(h.card.tries_left().0, 3);
    h.ok(&commands::verify(PIN_REF, b"1212").unwrap());
    // Parameters.
    assert_eq!(
        h.sw(&commands::verify(0x83, b"1212").unwrap()),
        Sw::ReferenceDataNotFound
    );
    assert_eq!(
        h.sw(&Command::new(0, 0x20, 0x01, PIN_REF).with_data(*b"1212")),
        Sw::IncorrectP1P2
    );
    assert_eq!(
        h.sw(&Command::new(0, 0x24, 0x02, PIN_REF).with_data(*b"1212")),
        Sw::IncorrectP1P2
    );
    assert_eq!(
        h.sw(&Command::new(0, 0x2C, 0x03, PIN_REF)),
        Sw::IncorrectP1P2
    );
    assert_eq!(
        h.sw(&Command::new(0, 0x2C, 0x00, PUK_REF)),
        Sw::ReferenceDataNotFound
    );
    assert_eq!(
        h.sw(&commands::change_reference_data(PIN_REF, b"1212", b"12").unwrap()),
        Sw::IncorrectData
    );
    assert_eq!(
        h.sw(&Command::new(0, 0x24, 0x00, PIN_REF).with_data(*b"12")),
        Sw::WrongLength
    );
}

#[test]
fn the_puk_blocks_for_good() {
    let mut h = Host::new();
    h.delivered();
    for left in (1..10).rev() {
        assert_eq!(
            h.sw(&Command::new(0, 0x2C, 1, PIN_REF).with_data(*b"99999999")),
            Sw::WrongPin { tries_left: left }
        );
    }
    assert_eq!(
        h.sw(&Command::new(0, 0x2C, 1, PIN_REF).with_data(*b"99999999")),
        Sw::AuthenticationBlocked
    );
    assert_eq!(
        h.sw(&Command::new(0, 0x2C, 1, PIN_REF).with_data(PUK)),
        Sw::AuthenticationBlocked
    );
}

#[test]
fn secrets_are_set_only_by_personalization_and_must_be_digits() {
    let mut h = Host::new();
    h.select_app();
    assert_eq!(
        h.sw(&commands::verify(PIN_REF, b"1234").unwrap()),
        Sw::ReferenceDataNotUsable
    );
    assert_eq!(
        h.sw(&commands::reset_retry_counter(PIN_REF, PUK, b"1234").unwrap()),
        Sw::ReferenceDataNotUsable
    );
    h.perso();
    for bad in [&b"123"[..], b"1234567890123", b"12a4"] {
        assert_eq!(
            h.sw(&commands::change_reference_data(PIN_REF, &[], bad).unwrap()),
            Sw::IncorrectData
        );
    }
    assert_eq!(
        h.sw(&commands::change_reference_data(PUK_REF, &[], b"1234567").unwrap()),
        Sw::IncorrectData
    );
    h.ok(&commands::change_reference_data(PIN_REF, &[], TRANSPORT_PIN).unwrap());
    h.ok(&commands::change_reference_data(PUK_REF, &[], PUK).unwrap());
    h.ok(&commands::verify(PIN_REF, TRANSPORT_PIN).unwrap());
}

// ---------------------------------------------------------------------------------------------
// Mutual authentication and secure messaging.

#[test]
fn mutual_authentication_consumes_the_challenge_and_blocks_after_three_failures() {
    let mut h = Host::new();
    let wrong = AesKey::Aes256([7; 32]);
    // No challenge.
    let cmd = Command::new(0, 0x82, 0, 0x02)
        .with_data(vec![0; 32])
        .with_ne(16);
    assert_eq!(h.sw(&cmd), Sw::ConditionsNotSatisfied);
    // Wrong cryptogram: 6300, the challenge is gone afterwards.
    assert_eq!(h.try_auth(KeyRef::Terminal, &wrong), sm::SW_AUTH_FAILED);
    assert_eq!(h.sw(&cmd), Sw::ConditionsNotSatisfied);
    assert_eq!(h.try_auth(KeyRef::Terminal, &wrong), sm::SW_AUTH_FAILED);
    assert_eq!(
        h.try_auth(KeyRef::Terminal, &wrong),
        Sw::AuthenticationBlocked
    );
    // Blocked even with the right key; the other key reference is unaffected.
    assert_eq!(
        h.try_auth(KeyRef::Terminal, &cardsim::fixtures::test_terminal_master()),
        Sw::AuthenticationBlocked
    );
    h.perso();
    // Other parameters.
    h.plain(&commands::get_challenge(16).unwrap());
    assert_eq!(
        h.sw(&Command::new(0, 0x82, 0, 0x03).with_data(vec![0; 32])),
        Sw::ReferenceDataNotFound
    );
    h.plain(&commands::get_challenge(16).unwrap());
    assert_eq!(
        h.sw(&Command::new(0, 0x82, 0, 0x01).with_data(vec![0; 31])),
        Sw::WrongLength
    );
    assert_eq!(
        h.sw(&Command::new(0, 0x82, 1, 0x01).with_data(vec![0; 32])),
        Sw::IncorrectP1P2
    );
}

#[test]
fn two_failures_then_success_resets_the_key_counter() {
    let mut h = Host::new();
    let wrong = AesKey::Aes256([7; 32]);
    for _ in 0..2 {
        assert_eq!(
            h.try_auth(KeyRef::Personalization, &wrong),
            sm::SW_AUTH_FAILED
        );
    }
    h.perso();
    for _ in 0..2 {
        assert_eq!(
            h.try_auth(KeyRef::Personalization, &wrong),
            sm::SW_AUTH_FAILED
        );
    }
    h.perso();
}

#[test]
fn a_bad_mac_closes_the_session() {
    let mut h = Host::new();
    h.select_app();
    h.perso();
    assert!(h.card.has_session());
    let mut wrapped =
        h.sm.as_mut()
            .unwrap()
            .wrap_command(&commands::get_data(layout::DO_LCS, 1).unwrap())
            .unwrap();
    let last = wrapped.data.len() - 1;
    wrapped.data[last] ^= 1;
    assert_eq!(h.raw(&wrapped.to_bytes().unwrap()), [0x69, 0x88]);
    assert!(!h.card.has_session());
    // Even a correct command of the old session is refused now.
    let good =
        h.sm.as_mut()
            .unwrap()
            .wrap_command(&commands::get_data(layout::DO_LCS, 1).unwrap())
            .unwrap();
    assert_eq!(h.raw(&good.to_bytes().unwrap()), [0x69, 0x88]);
    // Missing MAC: 6987, session closed too.
    h.perso();
    let no_mac = Command::new(0x0C, 0xCA, 0x01, 0x02)
        .with_data([0x97, 0x01, 0x01])
        .with_ne(256);
    assert_eq!(h.raw(&no_mac.to_bytes().unwrap()), [0x69, 0x87]);
    assert!(!h.card.has_session());
    // A plain command closes the session as well.
    h.perso();
    assert_eq!(
        h.plain(&commands::get_data(layout::DO_LCS, 1).unwrap()).sw,
        Sw::Success
    );
    assert!(!h.card.has_session());
    assert_eq!(h.create_ef(0x0101, 1), Sw::SecurityStatusNotSatisfied);
    // MUTUAL AUTHENTICATE inside a session is refused (re-authenticate in plain).
    h.perso();
    assert_eq!(
        h.sw(&Command::new(0, 0x82, 0, 0x01).with_data(vec![0; 32])),
        Sw::ConditionsNotSatisfied
    );
}

#[test]
fn protected_responses_fit_the_card_limit() {
    let cfg = SimConfig {
        extended_length: false,
        max_command_data: 255,
        max_response_data: 256,
        ..config()
    };
    let mut h = Host::with(SimCard::create(None, cfg).unwrap());
    h.select_app();
    h.perso();
    assert_eq!(h.create_ef(layout::EF_DG2, 1000), Sw::Success);
    h.ok(&commands::update_binary(0, &pattern(200, 1)).unwrap());
    let wrapped =
        h.sm.as_mut()
            .unwrap()
            .wrap_command(&commands::read_binary(0, 256).unwrap())
            .unwrap();
    let resp = h.raw(&wrapped.to_bytes().unwrap());
    assert!(resp.len() <= 258, "{}", resp.len());
    let plain =
        h.sm.as_mut()
            .unwrap()
            .unwrap_response(&RawResponse::parse(&resp).unwrap())
            .unwrap();
    assert_eq!(plain.sw, Sw::Success);
    assert!(plain.data.len() >= 200 && plain.data.len() < 256);
    assert_eq!(&plain.data[..200], &pattern(200, 1)[..]);
    // Extended APDUs are refused by a short-only card.
    assert_eq!(h.raw(&[0, 0xB0, 0, 0, 0, 0x01, 0x00]), [0x67, 0x00]);
}

#[test]
fn long_protected_responses_continue_with_get_response() {
    let mut h = Host::new();
    h.select_app();
    h.perso();
    assert_eq!(h.create_ef(layout::EF_DG1, 250), Sw::Success);
    h.ok(&commands::update_binary(0, &pattern(250, 6)).unwrap());
    // 250 plain bytes are 256 + 14 protected bytes: more than Le = 00 allows.
    let wrapped =
        h.sm.as_mut()
            .unwrap()
            .wrap_command(&commands::read_binary(0, 250).unwrap())
            .unwrap();
    assert_eq!(wrapped.ne, Some(256));
    let first = h.raw(&wrapped.to_bytes().unwrap());
    assert_eq!(first.len(), 258);
    assert_eq!(first[256], 0x61);
    let left = first[257];
    assert!(left > 0);
    // GET RESPONSE with a smaller Le takes two steps; it does not close the session.
    let second = h.raw(&[0x00, 0xC0, 0x00, 0x00, 5]);
    assert_eq!(&second[5..], &[0x61, left - 5]);
    let third = h.raw(&[0x00, 0xC0, 0x00, 0x00, left - 5]);
    assert_eq!(&third[third.len() - 2..], &[0x90, 0x00]);
    let mut all = first[..256].to_vec();
    all.extend_from_slice(&second[..5]);
    all.extend_from_slice(&third);
    let plain =
        h.sm.as_mut()
            .unwrap()
            .unwrap_response(&RawResponse::parse(&all).unwrap())
            .unwrap();
    assert_eq!((plain.sw, plain.data), (Sw::Success, pattern(250, 6)));
    assert!(h.card.has_session());
    assert_eq!(
        h.raw(&[0x00, 0xC0, 0x00, 0x00, 0x10]),
        [0x69, 0x85],
        "nothing left"
    );
    assert_eq!(h.raw(&[0x00, 0xC0, 0x01, 0x00, 0x10]), [0x6A, 0x86]);
    // Through the chokepoint (which follows 61xx) the same read is one call.
    let mut card = apdu::card::IdCard::new(SimTransport::new(h.card));
    let mut perso = card
        .authenticate_perso(&cardsim::fixtures::TestMasters)
        .unwrap();
    assert_eq!(perso.read_file(layout::EF_DG1).unwrap(), pattern(250, 6));
}

// ---------------------------------------------------------------------------------------------
// Persistence.

#[test]
fn state_survives_a_restart_but_volatile_state_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let mut h = Host::with(SimCard::create(Some(path.clone()), config()).unwrap());
    h.issued();
    h.select_app();
    h.terminal();
    assert_eq!(
        h.sw(&commands::verify(PIN_REF, b"0000").unwrap()),
        Sw::WrongPin { tries_left: 2 }
    );
    let wrong = AesKey::Aes256([1; 32]);
    assert_eq!(
        h.try_auth(KeyRef::Personalization, &wrong),
        Sw::ConditionsNotSatisfied
    );
    for _ in 0..2 {
        assert_eq!(h.try_auth(KeyRef::Terminal, &wrong), sm::SW_AUTH_FAILED);
    }
    drop(h);

    let card = SimCard::open(&path).unwrap();
    assert_eq!(card.serial(), SERIAL);
    assert_eq!(card.life_cycle(), LifeCycle::Deactivated);
    assert_eq!(card.tries_left(), (2, 10));
    for (fid, data) in files() {
        assert_eq!(card.app_file(fid), Some(data));
    }
    let mut h = Host::with(card);
    // No session after power-up: a protected command is refused.
    let cmd = Command::new(0x0C, 0xCA, 0x01, 0x02)
        .with_data([0x8E, 0x08, 0, 0, 0, 0, 0, 0, 0, 0])
        .with_ne(256);
    assert_eq!(h.raw(&cmd.to_bytes().unwrap()), [0x69, 0x88]);
    // The key failure counter persisted: one more failure blocks.
    assert_eq!(
        h.try_auth(KeyRef::Terminal, &wrong),
        Sw::AuthenticationBlocked
    );
    drop(h);
    let mut h = Host::with(SimCard::open_or_create(&path, SimConfig::default()).unwrap());
    assert_eq!(
        h.card.serial(),
        SERIAL,
        "open_or_create opens the existing card"
    );
    assert_eq!(
        h.try_auth(KeyRef::Terminal, &cardsim::fixtures::test_terminal_master()),
        Sw::AuthenticationBlocked
    );
}

#[test]
fn corrupt_missing_or_existing_state_files_are_clean_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    assert!(matches!(SimCard::open(&path), Err(Error::Transport(_))));
    SimCard::create(Some(path.clone()), config()).unwrap();
    assert!(matches!(
        SimCard::create(Some(path.clone()), config()),
        Err(Error::Usage(_))
    ));
    let good = std::fs::read_to_string(&path).unwrap();
    for bad in [
        String::new(),
        "{".to_string(),
        good.replace("\"format\":1", "\"format\":9"),
        good.replace("\"serial\":\"", "\"serial\":\"00"),
        good.replace("\"lcs\":1,", "\"lcs\":7,"),
        good[..good.len() / 2].to_string(),
    ] {
        assert_ne!(bad, good);
        std::fs::write(&path, &bad).unwrap();
        let err = SimCard::open(&path).unwrap_err();
        assert!(matches!(err, Error::Malformed(_)), "{err}");
    }
    // No temporary file is left behind by the atomic writes.
    std::fs::write(&path, &good).unwrap();
    let mut h = Host::with(SimCard::open(&path).unwrap());
    h.personalize();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("card.json")]);
}

// ---------------------------------------------------------------------------------------------
// Malformed input.

#[test]
fn malformed_apdus_get_status_words() {
    let mut h = Host::new();
    let cases: [(&[u8], [u8; 2]); 12] = [
        (&[], [0x67, 0x00]),
        (&[0x00], [0x67, 0x00]),
        (&[0x00, 0xA4, 0x00], [0x67, 0x00]),
        (&[0x00, 0xA4, 0x00, 0x0C, 0x05, 0x3F], [0x67, 0x00]),
        (&[0x00, 0xA4, 0x00, 0x0C, 0x00, 0x00], [0x67, 0x00]),
        (
            &[0x00, 0xD6, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01],
            [0x67, 0x00],
        ),
        (&[0x80, 0xA4, 0x00, 0x0C], [0x6E, 0x00]),
        (&[0xFF, 0xA4, 0x00, 0x0C], [0x6E, 0x00]),
        (&[0x01, 0xA4, 0x00, 0x0C], [0x68, 0x81]),
        (&[0x10, 0xD6, 0x00, 0x00, 0x01, 0x00], [0x68, 0x84]),
        (&[0x04, 0xA4, 0x00, 0x0C], [0x68, 0x82]),
        (&[0x00, 0x12, 0x00, 0x00], [0x6D, 0x00]),
    ];
    for (apdu, sw) in cases {
        assert_eq!(h.raw(apdu), sw, "{}", hex::encode(apdu));
    }
}

#[test]
fn random_bytes_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.json");
    let mut h = Host::with(SimCard::open_or_create(&path, config()).unwrap());
    assert!(path.exists(), "open_or_create created the card");
    h.personalize();
    let mut interesting = vec![
        0xA4u8, 0xB0, 0xB1, 0xD6, 0xD7, 0xE0, 0xE4, 0x44, 0x04, 0xE6, 0xE8, 0xCA, 0x84, 0x82, 0x20,
        0x24, 0x2C,
    ];
    interesting.push(0xFE);
    h.sm = None;
    for i in 0..20_000 {
        let len = rng.gen_range(0..40);
        let mut apdu: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        if apdu.len() >= 4 && i % 2 == 0 {
            apdu[0] &= 0x0C;
            apdu[1] = interesting[rng.gen_range(0..interesting.len() - 1)];
        }
        let resp = h.raw(&apdu);
        assert!(resp.len() >= 2, "{}", hex::encode(&apdu));
        if i % 1000 == 0 {
            h.select_app();
            h.perso();
            h.sm = None; // the random APDUs will close the card's side too
        }
    }
    // Whatever the noise did, the state file holds exactly the card's state.
    let reopened = SimCard::open(&path).unwrap();
    assert_eq!(reopened.life_cycle(), h.card.life_cycle());
    assert_eq!(reopened.tries_left(), h.card.tries_left());
    for (fid, _) in files() {
        assert_eq!(reopened.app_file(fid), h.card.app_file(fid), "{fid:04X}");
    }
}

// ---------------------------------------------------------------------------------------------
// The in-process reader.

#[test]
fn sim_transport_faults_and_reinsert() {
    let card = SimCard::create(None, config()).unwrap();
    let atr = card.atr();
    let mut t = SimTransport::new(card);
    assert_eq!(t.reader_name(), "sim:0");
    assert_eq!(t.atr(), atr);
    assert_eq!(atr[0], 0x3B);
    assert_eq!(atr.iter().skip(1).fold(0, |a, b| a ^ b), 0, "TCK");
    let caps = t.capabilities();
    assert!(caps.extended_length && !caps.chaining);
    assert_eq!(
        (caps.max_command_data, caps.max_response_data),
        (4096, 4096)
    );
    let lcs = [0x00, 0xCA, 0x01, 0x02, 0x01];
    let f = t.faults();
    f.set(Faults {
        forced_sw: Some((1, Sw::Unknown)),
        ..Faults::default()
    });
    assert_eq!(t.transmit_raw(&lcs).unwrap(), [0x01, 0x90, 0x00]);
    assert_eq!(t.transmit_raw(&lcs).unwrap(), [0x6F, 0x00]);
    assert_eq!(t.transmit_raw(&lcs).unwrap(), [0x01, 0x90, 0x00]);
    f.set(Faults {
        tear_after: Some(4),
        latency: std::time::Duration::from_millis(20),
        ..Faults::default()
    });
    let start = std::time::Instant::now();
    assert_eq!(t.transmit_raw(&lcs).unwrap(), [0x01, 0x90, 0x00]);
    assert!(start.elapsed() >= std::time::Duration::from_millis(20));
    assert_eq!(t.transmit_raw(&lcs).unwrap(), Vec::<u8>::new());
    assert!(!f.is_present());
    assert_eq!(t.transmit_raw(&lcs), Err(TransportError::CardRemoved));
    assert_eq!(t.reset(), Err(TransportError::CardRemoved));
    f.reinsert();
    assert_eq!(f.get().latency, std::time::Duration::from_millis(20));
    assert_eq!(f.get().tear_after, None);
    assert_eq!(t.transmit_raw(&lcs).unwrap(), [0x01, 0x90, 0x00]);
    assert_eq!(f.apdu_count(), 1);
    // Removal by hand; reset keeps the card but drops the session.
    f.remove();
    assert_eq!(t.transmit_raw(&lcs).unwrap(), Vec::<u8>::new());
    assert_eq!(t.transmit_raw(&lcs), Err(TransportError::CardRemoved));
    t.reinsert();
    assert_eq!(t.reset(), Ok(()));
    assert_eq!(f.with_card(|c| c.serial()), SERIAL);
}

#[test]
fn tear_in_update_persists_exactly_k_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let t = SimTransport::new(SimCard::create(Some(path.clone()), config()).unwrap());
    let f = t.faults();
    let mut card = apdu::card::IdCard::new(t);
    let mut perso = card
        .authenticate_perso(&cardsim::fixtures::TestMasters)
        .unwrap();
    perso.create_file(layout::EF_DG1, Some(1), 50).unwrap();
    // write_file sends SELECT, then the UPDATE BINARY that is torn after 17 bytes.
    let next = f.apdu_count();
    f.set(Faults {
        tear_in_update: Some((next + 1, 17)),
        ..Faults::default()
    });
    let err = perso.write_file(layout::EF_DG1, &[0xAB; 40]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport(TransportError::ShortResponse { len: 0 })
        ),
        "{err}"
    );
    let err = perso.write_file(layout::EF_DG1, &[0xAB; 40]).unwrap_err();
    assert!(
        matches!(err, Error::Transport(TransportError::CardRemoved)),
        "{err}"
    );
    drop(perso);
    drop(card);
    let card = SimCard::open(&path).unwrap();
    let mut want = vec![0xAB; 17];
    want.resize(50, 0);
    assert_eq!(card.app_file(layout::EF_DG1), Some(want.clone()));
    // A torn command that is not an UPDATE BINARY changes nothing.
    let mut t = SimTransport::new(card);
    t.faults().set(Faults {
        tear_in_update: Some((0, 5)),
        ..Faults::default()
    });
    assert_eq!(
        t.transmit_raw(&[0, 0xA4, 0, 0x0C, 2, 0x3F, 0x00]).unwrap(),
        Vec::<u8>::new()
    );
    assert_eq!(
        SimCard::open(&path).unwrap().app_file(layout::EF_DG1),
        Some(want)
    );
}
