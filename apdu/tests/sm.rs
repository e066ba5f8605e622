//! Secure messaging round trips between the host and the card side, tampering, and robustness of
//! the unwrap functions against arbitrary bytes.

use apdu::sm::{cmac, derive_auth, kdf, pad, AesKey, HostSecureChannel, SmSession};
use apdu::transmit::SecureChannel;
use apdu::{Command, Error, RawResponse, StatusWord};
use proptest::prelude::*;

fn keys() -> [AesKey; 2] {
    [AesKey::Aes128([0x42; 16]), AesKey::Aes256([0x24; 32])]
}

/// Host and card sessions as after a mutual authentication with `key`.
fn pair(key: &AesKey) -> (SmSession, SmSession) {
    let host = derive_auth(key, &[0x10; 16], &[0x20; 16]).session;
    let card = derive_auth(key, &[0x10; 16], &[0x20; 16]).session;
    (host, card)
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

#[test]
fn command_round_trips_for_all_shapes_and_key_sizes() {
    for key in keys() {
        let (mut host, mut card) = pair(&key);
        for n in [0usize, 1, 15, 16, 17, 255, 300, 1024] {
            for ne in [None, Some(1), Some(255), Some(256), Some(257), Some(65_536)] {
                let mut cmd = Command::new(0x00, 0xD6, 0x81, 0x04).with_data(data(n));
                if let Some(ne) = ne {
                    cmd = cmd.with_ne(ne);
                }
                let wrapped = host.wrap_command(&cmd).unwrap();
                assert_eq!(wrapped.cla, 0x0C);
                if n > 0 {
                    // The data travels encrypted.
                    assert!(!wrapped
                        .data
                        .windows(n.min(8))
                        .any(|w| w == &data(n)[..n.min(8)]));
                }
                // Through the wire codec and back, as the card sees it.
                let on_wire = Command::parse(&wrapped.to_bytes().unwrap()).unwrap();
                let plain = card.unwrap_command(&on_wire).unwrap();
                assert_eq!(plain, cmd, "n={n} ne={ne:?}");
                assert_eq!(host.ssc(), card.ssc());
            }
        }
    }
}

#[test]
fn response_round_trips_and_carry_the_inner_status() {
    for key in keys() {
        let (mut host, mut card) = pair(&key);
        for n in [0usize, 1, 16, 200, 300, 4096] {
            for sw in [
                StatusWord::Success,
                StatusWord::EndOfFile,
                StatusWord::WrongPin { tries_left: 2 },
            ] {
                let wire = card.wrap_response(&data(n), sw);
                assert_eq!(&wire[wire.len() - 2..], &[0x90, 0x00]);
                let resp = host
                    .unwrap_response(&RawResponse::parse(&wire).unwrap())
                    .unwrap();
                assert_eq!(resp.data, data(n));
                assert_eq!(resp.sw, sw);
            }
        }
    }
}

#[test]
fn ssc_advances_once_per_command_and_once_per_response() {
    let (mut host, mut card) = pair(&AesKey::Aes128([1; 16]));
    let w = host
        .wrap_command(&Command::new(0, 0xB0, 0, 0).with_ne(16))
        .unwrap();
    card.unwrap_command(&w).unwrap();
    assert_eq!(host.ssc()[15], 1);
    let r = card.wrap_response(&[9; 16], StatusWord::Success);
    host.unwrap_response(&RawResponse::parse(&r).unwrap())
        .unwrap();
    assert_eq!(host.ssc()[15], 2);
    assert_eq!(card.ssc()[15], 2);
    // The same plain command wraps differently each time (fresh SSC in the MAC and IV).
    let a = host
        .wrap_command(&Command::new(0, 0xB0, 0, 0).with_ne(16))
        .unwrap();
    let b = host
        .wrap_command(&Command::new(0, 0xB0, 0, 0).with_ne(16))
        .unwrap();
    assert_ne!(a.data, b.data);
}

#[test]
fn replayed_command_is_rejected() {
    let (mut host, mut card) = pair(&AesKey::Aes128([1; 16]));
    let w = host
        .wrap_command(&Command::new(0, 0xD6, 0, 0).with_data([1, 2, 3]))
        .unwrap();
    card.unwrap_command(&w).unwrap();
    card.wrap_response(&[], StatusWord::Success);
    assert_eq!(card.unwrap_command(&w), Err(StatusWord::SmObjectsIncorrect));
}

/// Flips one bit at every position of a protected command body; each must be caught.
#[test]
fn any_flipped_bit_in_a_command_is_rejected() {
    let key = AesKey::Aes256([3; 32]);
    let cmd = Command::new(0, 0xD6, 0, 0).with_data(data(40)).with_ne(20);
    let (mut host, _) = pair(&key);
    let good = host.wrap_command(&cmd).unwrap();
    for i in 0..good.data.len() * 8 {
        let (_, mut card) = pair(&key);
        let mut bad = good.clone();
        bad.data[i / 8] ^= 1 << (i % 8);
        let err = card.unwrap_command(&bad).unwrap_err();
        assert!(
            matches!(
                err,
                StatusWord::SmObjectsIncorrect | StatusWord::SmObjectsMissing
            ),
            "bit {i}: {err}"
        );
    }
    // A changed header (INS, P1) breaks the MAC too.
    for (ins, p1) in [(0xB0, 0), (0xD6, 1)] {
        let (_, mut card) = pair(&key);
        let mut bad = good.clone();
        bad.ins = ins;
        bad.p1 = p1;
        assert_eq!(
            card.unwrap_command(&bad),
            Err(StatusWord::SmObjectsIncorrect)
        );
    }
}

/// Flips one bit at every position of a protected response (DO87, DO99, DO8E).
#[test]
fn any_flipped_bit_in_a_response_is_rejected() {
    let key = AesKey::Aes128([5; 16]);
    let (_, mut card) = pair(&key);
    let wire = card.wrap_response(&data(33), StatusWord::Success);
    let body_len = wire.len() - 2;
    for i in 0..body_len * 8 {
        let (mut host, _) = pair(&key);
        let mut bad = wire.clone();
        bad[i / 8] ^= 1 << (i % 8);
        let res = host.unwrap_response(&RawResponse::parse(&bad).unwrap());
        assert!(
            matches!(res, Err(Error::SecureMessaging(_))),
            "bit {i}: {res:?}"
        );
    }
}

#[test]
fn missing_objects_are_rejected() {
    let key = AesKey::Aes128([6; 16]);
    // Command without DO8E: 6987.
    let (mut host, mut card) = pair(&key);
    let mut w = host
        .wrap_command(&Command::new(0, 0xB0, 0, 0).with_ne(10))
        .unwrap();
    let len = w.data.len();
    w.data.truncate(len - 10);
    assert_eq!(card.unwrap_command(&w), Err(StatusWord::SmObjectsMissing));
    // A plain command while SM is expected: 6987.
    let (_, mut card) = pair(&key);
    assert_eq!(
        card.unwrap_command(&Command::new(0, 0xB0, 0, 0)),
        Err(StatusWord::SmObjectsMissing)
    );
    // Response without DO8E, or without DO99 (MAC recomputed by a card with the right key would
    // still not help: DO99 is mandatory).
    let (mut host, mut card) = pair(&key);
    let wire = card.wrap_response(&[1, 2], StatusWord::Success);
    let mut cut = wire[..wire.len() - 12].to_vec();
    cut.extend_from_slice(&[0x90, 0x00]);
    assert!(
        matches!(host.unwrap_response(&RawResponse::parse(&cut).unwrap()), Err(Error::SecureMessaging(m)) if m.contains("DO8E"))
    );
    // Unprotected error status from the card: the card closed the session.
    let (mut host, _) = pair(&key);
    let r = host.unwrap_response(&RawResponse::status(StatusWord::SmObjectsIncorrect));
    assert!(matches!(r, Err(Error::SecureMessaging(m)) if m.contains("6988")));
}

#[test]
fn response_without_do99_is_rejected_even_with_a_valid_mac() {
    // Compute S_MAC independently (kdf label 06 over RND.IFD || RND.IC) and forge a response
    // made of DO87 + a correct DO8E but no DO99: the host must still refuse it.
    let key = AesKey::Aes128([6; 16]);
    let (mut host, _) = pair(&key);
    let mut ctx = [0x10u8; 32];
    ctx[16..].fill(0x20);
    let s_mac = AesKey::from_slice(&kdf(&key, 0x06, &ctx, 16)).unwrap();
    let mut ssc = [0u8; 16];
    ssc[15] = 1;
    let body = [0x87u8, 0x11, 0x01]
        .iter()
        .copied()
        .chain([0u8; 16])
        .collect::<Vec<u8>>();
    let mac = cmac(&s_mac, &[&ssc, &pad(&body)]);
    let mut wire = body.clone();
    wire.extend_from_slice(&[0x8E, 0x08]);
    wire.extend_from_slice(&mac[..8]);
    wire.extend_from_slice(&[0x90, 0x00]);
    let res = host.unwrap_response(&RawResponse::parse(&wire).unwrap());
    assert!(
        matches!(res, Err(Error::SecureMessaging(ref m)) if m.contains("DO99")),
        "{res:?}"
    );
}

#[test]
fn wrong_session_key_is_rejected_both_ways() {
    let (mut host, _) = pair(&AesKey::Aes128([7; 16]));
    let (_, mut card) = pair(&AesKey::Aes128([8; 16]));
    let w = host
        .wrap_command(&Command::new(0, 0xB0, 0, 0).with_ne(4))
        .unwrap();
    assert_eq!(card.unwrap_command(&w), Err(StatusWord::SmObjectsIncorrect));
    let r = card.wrap_response(&[1, 2, 3, 4], StatusWord::Success);
    assert!(host
        .unwrap_response(&RawResponse::parse(&r).unwrap())
        .is_err());
    // Same key, different challenges: different sessions.
    let key = AesKey::Aes256([9; 32]);
    let mut host = derive_auth(&key, &[1; 16], &[2; 16]).session;
    let mut card = derive_auth(&key, &[1; 16], &[3; 16]).session;
    let w = host
        .wrap_command(&Command::new(0, 0xB0, 0, 0).with_ne(4))
        .unwrap();
    assert_eq!(card.unwrap_command(&w), Err(StatusWord::SmObjectsIncorrect));
}

#[test]
fn out_of_step_counters_are_rejected() {
    let (mut host, mut card) = pair(&AesKey::Aes128([7; 16]));
    host.wrap_command(&Command::new(0, 0xB0, 0, 0)).unwrap(); // lost on the way
    let w = host.wrap_command(&Command::new(0, 0xB0, 0, 0)).unwrap();
    assert_eq!(card.unwrap_command(&w), Err(StatusWord::SmObjectsIncorrect));
}

#[test]
fn host_channel_closes_after_a_failure() {
    let (host, mut card) = pair(&AesKey::Aes128([7; 16]));
    let mut ch = HostSecureChannel::new(host);
    let w = ch.wrap(&Command::new(0, 0xB0, 0, 0).with_ne(2)).unwrap();
    card.unwrap_command(&w).unwrap();
    let r = card.wrap_response(&[1, 2], StatusWord::Success);
    assert_eq!(
        ch.unwrap(&RawResponse::parse(&r).unwrap()).unwrap().data,
        [1, 2]
    );
    assert!(!ch.is_closed());
    assert!(ch
        .unwrap(&RawResponse::status(StatusWord::SmObjectsIncorrect))
        .is_err());
    assert!(ch.is_closed());
    assert!(matches!(
        ch.wrap(&Command::new(0, 0xB0, 0, 0)),
        Err(Error::SecureMessaging(_))
    ));
}

#[test]
fn garbage_bodies_give_clean_errors() {
    let key = AesKey::Aes128([7; 16]);
    let bodies: [&[u8]; 8] = [
        &[0x87],
        &[0x87, 0x82, 0xFF],
        &[0x87, 0x84, 0, 0, 0, 1],
        &[0x8E, 0x08, 1, 2, 3],
        &[0x87, 0x02, 0x01, 0x00, 0x8E, 0x08, 0, 0, 0, 0, 0, 0, 0, 0],
        &[
            0x97, 0x01, 0x00, 0x97, 0x01, 0x00, 0x8E, 0x08, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
        &[0x8E, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0x99, 0x02, 0x90, 0x00],
        &[0x1F, 0x81, 0x01, 0x00],
    ];
    for body in bodies {
        let (mut host, mut card) = pair(&key);
        let cmd = Command::new(0x0C, 0xB0, 0, 0).with_data(body.to_vec());
        assert!(card.unwrap_command(&cmd).is_err(), "{body:02X?}");
        let mut wire = body.to_vec();
        wire.extend_from_slice(&[0x90, 0x00]);
        assert!(
            host.unwrap_response(&RawResponse::parse(&wire).unwrap())
                .is_err(),
            "{body:02X?}"
        );
    }
}

proptest! {
    #[test]
    fn unwrap_never_panics_on_random_bytes(
        body in proptest::collection::vec(any::<u8>(), 0..400),
        cla in any::<u8>(),
        sw in any::<u16>(),
    ) {
        let (mut host, mut card) = pair(&AesKey::Aes128([9; 16]));
        let cmd = Command::new(cla, 0xB0, 0, 0).with_data(body.clone());
        prop_assert!(card.unwrap_command(&cmd).is_err());
        let resp = RawResponse { data: body, sw: StatusWord::from(sw) };
        prop_assert!(host.unwrap_response(&resp).is_err());
    }

    #[test]
    fn unwrap_never_panics_on_mutated_valid_bodies(
        n in 0usize..100,
        pos in any::<usize>(),
        byte in any::<u8>(),
        cut in any::<usize>(),
    ) {
        let key = AesKey::Aes256([1; 32]);
        let (mut host, mut card) = pair(&key);
        let w = host.wrap_command(&Command::new(0, 0xD6, 0, 0).with_data(data(n)).with_ne(5)).unwrap();
        let mut bad = w.clone();
        let i = pos % bad.data.len();
        bad.data[i] = byte;
        let keep = bad.data.len() - cut % 4;
        bad.data.truncate(keep);
        let out = card.unwrap_command(&bad);
        if bad.data[..] == w.data[..] {
            prop_assert!(out.is_ok());
        } else {
            prop_assert!(out.is_err());
        }
    }
}

/// Known answers from an independent implementation of the protocol text in Python with
/// pyca/cryptography (`fixtures/sm_reference.py`): key diversification, session keys,
/// cryptograms and the exact bytes of protected commands and responses. Round trips alone
/// cannot catch a mistake made the same way on both sides; these can.
#[test]
fn independent_reference_vectors() {
    const K_TERMINAL: &str = "5aa172ae22ddc9e8d2e99bfd3884d0fafc70456b26e398445777844e76e8bdea";
    const HOST_CRYPTOGRAM: &str = "b557837d031642dee10605580b4b0ee3";
    const CARD_CRYPTOGRAM: &str = "3adbe7eca63a14b95bfe5f26562a3a5d";
    const CMD1: &str = "0ca4020c1d871101896cb9e1798287712e0cbb523a430eae8e0860ff749208ca26b200";
    const RESP2: &str = "990290008e08b608e4fc57cf13089000";
    const CMD3: &str = "0cb0000000000e9702012c8e081a378149d5f90f340000";
    const RESP4: &str = "8721013742817cf85a584d097de7f6ec1b7c54e6916e6f701951e1a30f897500add156990262828e08277075f59c03943a9000";
    const CMD1_AES128_300_PREFIX: &str = "0cd6000000013f8782013101b5c6f8df2ac6b3555867c52f";
    const CMD1_AES128_300_SUFFIX: &str = "8e08689800f392aa53c40000";

    let master = cardsim::fixtures::test_terminal_master();
    let k = apdu::sm::diversify(&master, apdu::sm::KeyRef::Terminal, b"SN000042");
    assert_eq!(hex::encode(k.as_bytes()), K_TERMINAL);

    let rnd_ifd: [u8; 16] = std::array::from_fn(|i| 0x10 + i as u8);
    let rnd_ic: [u8; 16] = std::array::from_fn(|i| 0xA0 + i as u8);
    let auth = derive_auth(&k, &rnd_ifd, &rnd_ic);
    assert_eq!(hex::encode(*auth.host_cryptogram), HOST_CRYPTOGRAM);
    assert_eq!(hex::encode(*auth.card_cryptogram), CARD_CRYPTOGRAM);
    let host_step = apdu::sm::host_authenticate_step(&k, &rnd_ifd, &rnd_ic);
    let card_step =
        apdu::sm::card_authenticate_step(&k, &rnd_ic, host_step.command_data()).unwrap();
    let mut card = card_step.session;
    let mut host = host_step
        .verify_card(&hex::decode(CARD_CRYPTOGRAM).unwrap())
        .unwrap();

    let select = Command::new(0, 0xA4, 0x02, 0x0C).with_data([0x01, 0x01]);
    let w = host.wrap_command(&select).unwrap();
    assert_eq!(hex::encode(w.to_bytes().unwrap()), CMD1);
    assert_eq!(card.unwrap_command(&w).unwrap(), select);
    let r = card.wrap_response(&[], StatusWord::Success);
    assert_eq!(hex::encode(&r), RESP2);
    assert_eq!(
        host.unwrap_response(&RawResponse::parse(&r).unwrap())
            .unwrap()
            .sw,
        StatusWord::Success
    );

    let read = Command::new(0, 0xB0, 0, 0).with_ne(300);
    let w = host.wrap_command(&read).unwrap();
    assert_eq!(hex::encode(w.to_bytes().unwrap()), CMD3);
    assert_eq!(card.unwrap_command(&w).unwrap(), read);
    let data: Vec<u8> = (0..20).collect();
    let r = card.wrap_response(&data, StatusWord::EndOfFile);
    assert_eq!(hex::encode(&r), RESP4);
    let plain = host
        .unwrap_response(&RawResponse::parse(&r).unwrap())
        .unwrap();
    assert_eq!((plain.data, plain.sw), (data, StatusWord::EndOfFile));

    let k128 = AesKey::Aes128(std::array::from_fn(|i| i as u8));
    let mut host = derive_auth(&k128, &rnd_ifd, &rnd_ic).session;
    let payload: Vec<u8> = (0..300).map(|i| (i * 7 % 256) as u8).collect();
    let w = host
        .wrap_command(&Command::new(0, 0xD6, 0, 0).with_data(payload))
        .unwrap();
    let wire = hex::encode(w.to_bytes().unwrap());
    assert!(wire.starts_with(CMD1_AES128_300_PREFIX), "{wire}");
    assert!(wire.ends_with(CMD1_AES128_300_SUFFIX), "{wire}");
    assert_eq!(wire.len(), 2 * (7 + 319 + 2));
}
