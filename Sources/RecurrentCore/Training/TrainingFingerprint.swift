import Foundation

/// The settings of a run that must not change when it is resumed, keyed by configuration field
/// names (the `CodingKeys` of the configuration types), never by command-line spellings, so a
/// renamed flag does not break resuming an older run.
public enum TrainingFingerprint {
    /// The top-level fields of `value`'s JSON encoding as `name: text` (nested values as compact
    /// JSON, absent optionals left out).
    public static func fields(of value: some Encodable) -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value),
              let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return [:] }
        var out: [String: String] = [:]
        for (key, v) in object {
            switch v {
            case let s as String: out[key] = s
            case is NSNull: continue
            case let n as NSNumber: out[key] = "\(n)"
            default:
                let d = (try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
                out[key] = String(decoding: d, as: UTF8.self)
            }
        }
        return out
    }

    /// The first field (in name order) whose value differs between `saved` and `now`, with both
    /// values (`(absent)` where one side lacks it); nil when they agree.
    public static func firstDifference(saved: [String: String], now: [String: String]) -> (field: String, saved: String, now: String)? {
        for key in Set(saved.keys).union(now.keys).sorted() where saved[key] != now[key] {
            return (key, saved[key] ?? "(absent)", now[key] ?? "(absent)")
        }
        return nil
    }

    /// A setting that differs between a saved run and now.
    public struct Difference: Sendable, Equatable {
        /// The configuration field (`learning_rate`, `hidden`).
        public var field: String
        /// Its command-line option (`--lr`, `--hidden`).
        public var option: String
        /// The values, `(absent)` where one side lacks the field.
        public var saved: String, now: String

        /// A difference; `option` defaults to `optionName(for: field)`.
        public init(field: String, saved: String, now: String, option: String? = nil) {
            self.field = field; self.saved = saved; self.now = now; self.option = option ?? TrainingFingerprint.optionName(for: field)
        }
    }

    /// Every field (in name order) whose value differs, except those in `ignoring`.
    public static func differences(saved: [String: String], now: [String: String], ignoring: Set<String> = []) -> [Difference] {
        Set(saved.keys).union(now.keys).subtracting(ignoring).sorted().filter { saved[$0] != now[$0] }
            .map { Difference(field: $0, saved: saved[$0] ?? "(absent)", now: now[$0] ?? "(absent)") }
    }

    /// The command-line option of a configuration field: `--` and the name with `-` for `_`,
    /// except where the option is spelled otherwise (`learning_rate` is `--lr`).
    public static func optionName(for field: String) -> String {
        let special = ["learning_rate": "--lr", "source_level": "--level", "target_level": "--level", "width": "--size",
                       "height": "--size", "data": "--data", "schedule_horizon": "--steps/--epochs/--time-budget"]
        return special[field] ?? "--" + field.replacingOccurrences(of: "_", with: "-")
    }

    /// `fields` as one line of JSON (sorted keys).
    static func encode(_ fields: [String: String]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// The inverse of `encode`; an empty dictionary for anything else.
    static func decode(_ text: String) -> [String: String] {
        ((try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: String]) ?? [:]
    }
}
