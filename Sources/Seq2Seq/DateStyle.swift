/// The human ways of writing a date that the `dates` task uses as sources.
///
/// Every style is rendered in English. Two-digit years (`yy`) are only unambiguous for the
/// 100-year window the task draws from (1950 … 2049: `50` … `99` → 19xx, `00` … `49` → 20xx).
/// The patterns below are in Unicode (ICU / `DateFormatter`) notation, for 1987-03-03.
public enum DateStyle: String, CaseIterable, Sendable, Codable {
    /// `d MMMM yyyy`: "3 March 1987".
    case dayMonthNameYear
    /// `MMMM d, yyyy`: "March 3, 1987".
    case monthNameDayCommaYear
    /// `MM/dd/yy` (US order): "03/03/87".
    case usSlashShortYear
    /// `yyyy.MM.dd`: "1987.03.03".
    case yearDotMonthDotDay
    /// `EEEE, MMMM d yyyy`: "Tuesday, March 3 1987".
    case weekdayMonthNameDayYear
    /// `d MMM yy`, lower case: "3 mar 87".
    case lowerDayShortMonthShortYear
    /// `MMM d, yyyy`, upper case: "MAR 3, 1987".
    case upperShortMonthDayCommaYear
    /// `dd-MM-yyyy` (day first): "03-03-1987".
    case dayDashMonthDashYear
    /// `EEE d MMM yyyy`: "Tue 3 Mar 1987".
    case shortWeekdayDayShortMonthYear
    /// `d.M.yyyy` (day first, no padding): "3.3.1987".
    case dayDotMonthDotYearUnpadded
    /// Ordinal day: "the 3rd of March, 1987".
    case ordinalDayOfMonthYear
    /// `yyyyMMdd`: "19870303".
    case compact

    /// English month names, January first.
    public static let monthNames = ["January", "February", "March", "April", "May", "June", "July",
                                    "August", "September", "October", "November", "December"]
    /// English weekday names, Sunday first (index = `CalendarDate.weekday`).
    public static let weekdayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday",
                                      "Friday", "Saturday"]

    /// `date` written in this style.
    public func render(_ date: CalendarDate) -> String {
        let month = DateStyle.monthNames[date.month - 1]
        let shortMonth = String(month.prefix(3))
        let weekday = DateStyle.weekdayNames[date.weekday]
        let yy = pad(((date.year % 100) + 100) % 100, 2)
        let y = String(date.year), m = String(date.month), d = String(date.day)
        let mm = pad(date.month, 2), dd = pad(date.day, 2)
        switch self {
        case .dayMonthNameYear: return "\(d) \(month) \(y)"
        case .monthNameDayCommaYear: return "\(month) \(d), \(y)"
        case .usSlashShortYear: return "\(mm)/\(dd)/\(yy)"
        case .yearDotMonthDotDay: return "\(y).\(mm).\(dd)"
        case .weekdayMonthNameDayYear: return "\(weekday), \(month) \(d) \(y)"
        case .lowerDayShortMonthShortYear: return "\(d) \(shortMonth.lowercased()) \(yy)"
        case .upperShortMonthDayCommaYear: return "\(shortMonth.uppercased()) \(d), \(y)"
        case .dayDashMonthDashYear: return "\(dd)-\(mm)-\(y)"
        case .shortWeekdayDayShortMonthYear: return "\(weekday.prefix(3)) \(d) \(shortMonth) \(y)"
        case .dayDotMonthDotYearUnpadded: return "\(d).\(m).\(y)"
        case .ordinalDayOfMonthYear: return "the \(DateStyle.ordinal(date.day)) of \(month), \(y)"
        case .compact: return "\(y)\(mm)\(dd)"
        }
    }

    /// English ordinal with suffix: 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 22nd, 23rd, 31st.
    public static func ordinal(_ n: Int) -> String {
        let suffix: String
        if (11...13).contains(n % 100) {
            suffix = "th"
        } else {
            switch n % 10 {
            case 1: suffix = "st"
            case 2: suffix = "nd"
            case 3: suffix = "rd"
            default: suffix = "th"
            }
        }
        return "\(n)\(suffix)"
    }
}
