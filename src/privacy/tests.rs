use proptest::prelude::*;

use super::*;

fn masker() -> Masker {
    Masker::new(vec![
        MaskingRule {
            term: "Acme Corp".into(),
            action: RuleAction::Alias("Client A".into()),
        },
        MaskingRule {
            term: "Project Falcon".into(),
            action: RuleAction::Redact,
        },
    ])
    .unwrap()
}

/// The one check digit that makes `prefix` a valid Aadhaar number.
fn aadhaar_with_check(prefix: &str) -> String {
    (0..10)
        .map(|d| format!("{prefix}{d}"))
        .find(|n| aadhaar_ok(n))
        .unwrap()
}

#[test]
fn check_digit_validators_accept_valid_and_refuse_invalid_samples() {
    for (valid, invalid) in [
        ("4111 1111 1111 1111", "4111 1111 1111 1112"),
        ("5500-0000-0000-0004", "5500-0000-0000-0005"),
    ] {
        assert!(card_ok(valid), "{valid}");
        assert!(!card_ok(invalid), "{invalid}");
    }
    for (valid, invalid) in [
        ("GB82 WEST 1234 5698 7654 32", "GB82 WEST 1234 5698 7654 33"),
        ("DE89370400440532013000", "DE89370400440532013001"),
    ] {
        assert!(iban_ok(valid), "{valid}");
        assert!(!iban_ok(invalid), "{invalid}");
    }
    let aadhaar = aadhaar_with_check("23412341234");
    assert!(aadhaar_ok(&aadhaar));
    let wrong = format!(
        "{}{}",
        &aadhaar[..11],
        (aadhaar.as_bytes()[11] - b'0' + 1) % 10
    );
    assert!(!aadhaar_ok(&wrong));
    assert!(
        !aadhaar_ok("123412341234"),
        "Aadhaar never starts with 0 or 1"
    );
    assert!(gstin_ok("27AAPFU0939F1ZV"));
    assert!(!gstin_ok("27AAPFU0939F1ZW"));
}

#[test]
fn each_category_is_detected_and_replaced_by_its_placeholder() {
    let aadhaar = aadhaar_with_check("23412341234");
    let cases = [
        ("mail ada@example.com now", "EMAIL"),
        ("call +91 98765 43210 today", "PHONE"),
        ("card 4111 1111 1111 1111 on file", "CARD"),
        ("from 192.168.10.20 yesterday", "IP"),
        ("from 2001:db8::1 yesterday", "IP"),
        (
            "Authorization: Bearer abcdefghijklmnopqrstuvwx12345",
            "SECRET",
        ),
        ("key sk_live_abcdefghijklmnop1234 leaked", "SECRET"),
        ("pay to GB82 WEST 1234 5698 7654 32 please", "IBAN"),
        ("PAN ABCPE1234F given", "PAN"),
        (&*format!("Aadhaar {aadhaar} given"), "AADHAAR"),
        ("GSTIN 27AAPFU0939F1ZV registered", "GSTIN"),
        ("DOB: 1990-04-12, blood O+", "DOB"),
    ];
    for (text, category) in cases {
        let masked = masker().mask(text);
        assert_eq!(
            masked.counts.get(category),
            Some(&1),
            "{text} -> {masked:?}"
        );
        assert!(
            masked.text.contains(&format!("[{category}_1]")),
            "{text} -> {}",
            masked.text
        );
    }
}

#[test]
fn look_alikes_are_left_alone() {
    for text in [
        "order 4111 1111 1111 1112 shipped",
        "PAN ABCDE1234F is not a PAN",
        "version 1.2.3 released",
        "GSTIN 27AAPFU0939F1ZW has a bad check character",
        "meeting on 1990-04-12",
    ] {
        let masked = masker().mask(text);
        assert_eq!(masked.text, text, "{text}");
        assert!(masked.counts.is_empty());
    }
}

/// Values in text with non-ASCII letters, even right against such a letter, are found: a
/// non-ASCII letter never hides a value beside it.
#[test]
fn values_beside_non_ascii_letters_are_masked() {
    let masked = masker().mask("Zoë paid with 4111 1111 1111 1111; write to zoë@example.com or ·ada@example.com·, call é+44 20 7946 0958");
    assert_eq!(
        masked.text,
        "Zoë paid with [CARD_1]; write to [EMAIL_1] or ·[EMAIL_2]·, call é[PHONE_1]"
    );
}

/// Where one candidate fails its check, another that overlaps it is still found: a card
/// that fails Luhn can still hold a phone number's place.
#[test]
fn a_failed_candidate_leaves_room_for_others() {
    let masked = masker().mask("ref 4111 1111 1111 1112 then 10.0.0.1");
    assert_eq!(masked.text, "ref 4111 1111 1111 1112 then [IP_1]");
}

#[test]
fn terms_get_aliases_or_redaction_as_whole_words_only() {
    let masked = masker().mask("acme corp runs Project Falcon; Acme Corporation does not.");
    assert_eq!(
        masked.text,
        "Client A runs [REDACTED]; Acme Corporation does not."
    );
    assert_eq!(masked.counts.get(ALIAS_COUNT), Some(&1));
    assert_eq!(masked.counts.get(REDACTED_COUNT), Some(&1));
}

#[test]
fn equal_values_share_a_placeholder_and_counts_hold_no_values() {
    let masked = masker().mask("ada@example.com, bob@example.com, ada@example.com");
    assert_eq!(masked.text, "[EMAIL_1], [EMAIL_2], [EMAIL_1]");
    assert_eq!(masked.counts.get("EMAIL"), Some(&3));
    assert!(masked.counts.keys().all(|k| !k.contains('@')));
}

#[test]
fn json_records_are_masked_string_by_string_with_shared_numbering() {
    let record = serde_json::json!({
        "email": "ada@example.com",
        "contacts": ["ada@example.com", "bob@example.com"],
        "dob": "1990-04-01",
        "note": "acme corp paid",
        "amount": 42,
        "dob_verified": true
    });
    let (masked, counts) = masker().mask_json(&record);
    assert_eq!(
        masked,
        serde_json::json!({
            "email": "[EMAIL_1]",
            "contacts": ["[EMAIL_1]", "[EMAIL_2]"],
            "dob": "[DOB_1]",
            "note": "Client A paid",
            "amount": 42,
            "dob_verified": true
        })
    );
    assert_eq!(counts.get("EMAIL"), Some(&3));
    assert_eq!(counts.get("DOB"), Some(&1));
    assert_eq!(counts.get(super::ALIAS_COUNT), Some(&1));
}

#[test]
fn numbers_and_keys_holding_personal_data_are_masked_too() {
    let aadhaar: u64 = aadhaar_with_check("23456789012").parse().unwrap();
    let record = serde_json::json!({
        "aadhaar": aadhaar,
        "card": 4111111111111111_u64,
        "ada@example.com": "owner",
        "amount": 1250,
        "ratio": 0.5
    });
    let (masked, counts) = masker().mask_json(&record);
    assert_eq!(
        masked,
        serde_json::json!({
            "aadhaar": "[AADHAAR_1]",
            "card": "[CARD_1]",
            "[EMAIL_1]": "owner",
            "amount": 1250,
            "ratio": 0.5
        })
    );
    assert_eq!(counts.values().sum::<usize>(), 3);
}

#[test]
fn masked_values_are_counted_in_text_already_masked() {
    let m = masker();
    let shown = m.mask(
        "Acme Corp and Project Falcon: ada@example.com, bob@example.com, 4111 1111 1111 1111",
    );
    assert_eq!(m.shown_counts(&shown.text), shown.counts, "{}", shown.text);
    for not_masked in [
        "[EMAIL_]",
        "[NOPE_1]",
        "[EMAIL_x]",
        "[REDACTED",
        "Client Alpha",
        "client a",
    ] {
        assert!(m.shown_counts(not_masked).is_empty(), "{not_masked}");
    }
    assert_eq!(m.shown_counts("[[EMAIL_12]]")["EMAIL"], 1);
    assert!(
        Masker::new(Vec::new())
            .unwrap()
            .shown_counts("Client A")
            .is_empty()
    );
}

/// What a workspace's shown index holds is masked text; it is rebuilt when
/// `MASKING_VERSION` changes. This pins the version to the masked form of a sample with
/// every detector and both rule kinds: a change to what the masker shows fails here until
/// the version is bumped (and the fingerprint updated).
#[test]
fn the_masking_version_names_what_the_masker_shows() {
    use sha2::{Digest, Sha256};
    let aadhaar = aadhaar_with_check("23412341234");
    let sample = [
        "Acme Corp pays; Project Falcon is late; acme corp again",
        "mail ada@example.com, zoë@exämple.de or ADA@EXAMPLE.COM",
        "call +44 20 7946 0958 or 020 7946 0958",
        "card 4111 1111 1111 1111 and 5500-0000-0000-0004, not 4111 1111 1111 1112",
        "hosts 192.168.1.20 and 2001:db8::1",
        "Bearer abcdefghijklmnopqrstuvwxyz012345 sk_live_abcdefghijklmnop1234",
        "iban GB82 WEST 1234 5698 7654 32, pan ABCPE1234F, gstin 27AAPFU0939F1ZV",
        &format!("aadhaar {aadhaar}"),
        "dob: 1990-04-01, born 01/04/1990",
        "order 1234567890123 on 2024-05-01",
    ];
    let m = masker();
    let mut hash = Sha256::new();
    for text in sample {
        hash.update(m.mask(text).text.as_bytes());
        hash.update([0]);
    }
    let value = serde_json::json!({"dob": "1990-04-01", "phone": 442079460958_u64, "a": ["x@y.io", "x@y.io"]});
    hash.update(m.mask_json(&value).0.to_string().as_bytes());
    let fingerprint = hex::encode(&hash.finalize()[..8]);
    assert_eq!(
        (MASKING_VERSION, fingerprint.as_str()),
        (1, "5aec3c210ca33a43"),
        "what the masker shows changed: bump MASKING_VERSION and put the new fingerprint here"
    );
}

#[test]
fn empty_terms_are_refused() {
    let rule = MaskingRule {
        term: "  ".into(),
        action: RuleAction::Redact,
    };
    assert!(matches!(
        Masker::new(vec![rule]),
        Err(PrivacyError::EmptyTerm)
    ));
}

/// A card number with a valid Luhn check digit, from 15 random digits.
fn card() -> impl Strategy<Value = String> {
    proptest::collection::vec(0u32..10, 15).prop_map(|digits| {
        let body: String = digits
            .iter()
            .map(|d| char::from_digit(*d, 10).unwrap())
            .collect();
        (0..10)
            .map(|d| format!("4{body}{d}"))
            .find(|n| card_ok(n))
            .unwrap()
    })
}

fn sensitive_value() -> impl Strategy<Value = String> {
    prop_oneof![
        card(),
        "[a-z]{3,8}\\.[a-z]{2,6}@[a-z]{3,8}\\.(com|org|in)",
        (1u8..=223, 0u8..=255, 0u8..=255, 1u8..=254)
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        "sk_live_[a-z0-9]{16,24}",
    ]
}

proptest! {
    #[test]
    fn masking_never_leaves_a_detected_value_in_the_output(
        before in "[A-Za-z ]{0,30}",
        value in sensitive_value(),
        after in "[A-Za-z ]{0,30}",
    ) {
        let text = format!("{before} {value} {after}");
        let masked = masker().mask(&text);
        prop_assert!(!masked.text.contains(&value), "{} still holds {}", masked.text, value);
        prop_assert_eq!(masked.counts.values().sum::<usize>(), 1);
        prop_assert!(detect(&masked.text).is_empty(), "masked text still has PII: {}", masked.text);
    }
}
