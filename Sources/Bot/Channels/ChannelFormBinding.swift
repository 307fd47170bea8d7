import Channels
import Conversations
import Foundation
import Localization
import Money
import PayoutAddresses
import TelegramBotAPI

/// The code behind `Conversations/channel_form.yaml`: catalogues, channel checks, ownership, save and cancel.
public struct ChannelFormBinding: ConversationBinding {
    public static let conversation = "channel_form"
    public let maximumChannelsPerOwner: Int

    public init(maximumChannelsPerOwner: Int) {
        self.maximumChannelsPerOwner = maximumChannelsPerOwner
    }

    /// What a new channel starts with: paid per payment, no notifications, every tier off.
    public static let newChannelDefaults: [String: String] = [
        "payout_strategy": "instant", "notifications_enabled": "false", "donation_min": "4.99", "donation_max": "9999.99",
        "tier1_enabled": "false", "tier2_enabled": "false", "tier3_enabled": "false",
    ]

    /// Languages a channel's posts can be written in (the `post_language` options of the form).
    public static let postLanguages: Set<String> = ["en", "ru"]

    public var conversationID: String { Self.conversation }
    public var actions: Set<String> { ["save", "cancel"] }
    public var validators: Set<String> { ["reachable_user", "not_below_donation_min"] }

    /// `reachable_user`: someone who has talked to the bot and not blocked it — the bot cannot message
    /// anyone else, so payment notifications to them would be lost.
    /// `not_below_donation_min`: the largest donation is at least the smallest (the database checks it too).
    public func validate(_ validator: String, value: String, state: ConversationState, session: FormSession) async throws -> InputRejection? {
        if validator == "not_below_donation_min" {
            guard let maximum = DecimalText.parse(value), let minimum = state.values["donation_min"].flatMap(DecimalText.parse), maximum < minimum
            else {
                return nil
            }
            return InputRejection(L10n.channelsErrorDonationMaxBelowMin, ["min": DecimalText.usd(minimum)])
        }
        guard validator == "reachable_user", let id = Int64(value) else { return nil }
        if try await TelegramUserStore.isReachable(id, on: session.connection, logger: session.logger) { return nil }
        return InputRejection(L10n.channelsErrorRecipientUnreachable, ["id": value])
    }

    /// A new channel may be configured by anyone (the save checks the limit); an existing one only by its owner.
    public func isAllowed(_ state: ConversationState, session: FormSession) async throws -> Bool {
        guard let idText = state.context["channel_id"] else { return true }
        guard let id = Int64(idText) else { return false }
        return try await ChannelStore.summary(id: id, ownerUserID: session.userID, on: session.connection, logger: session.logger) != nil
    }

    public func options(catalogue: String, filter: String?, session: FormSession) async throws -> [ChoiceOption] {
        switch catalogue {
        case "payout_networks":
            return try await ChannelStore.networks(on: session.connection, logger: session.logger)
                .map { ChoiceOption(value: $0.code, label: "\($0.name) (\($0.code))") }
        case "payout_currencies":
            guard let filter, !filter.isEmpty else { return [] }
            return try await ChannelStore.currencies(network: filter, on: session.connection, logger: session.logger)
                .map { ChoiceOption(value: $0.code, label: $0.code) }
        default:
            return []
        }
    }

    /// `wallet`: an address of the network chosen in the field's `network_field`, in its canonical form.
    public func check(_ field: FieldDefinition, value: String, values: [String: String], session: FormSession) async throws -> Result<
        String, InputRejection
    > {
        guard case .wallet(let networkField) = field.kind else { return .success(value) }
        let network = values[networkField] ?? ""
        guard !network.isEmpty, let format = try await ChannelStore.addressFormat(network: network, on: session.connection, logger: session.logger)
        else {
            return .failure(InputRejection(L10n.formErrorNetworkFirst))
        }
        return WalletAddressValidator.validate(value, format: format).mapError { Self.rejection(for: $0, network: network) }
    }

    static func rejection(for error: WalletAddressError, network: String) -> InputRejection {
        switch error {
        case .empty: InputRejection(L10n.formErrorEmpty)
        case .notThisNetwork: InputRejection(L10n.formErrorWalletNotNetwork, ["network": network])
        case .checksumMismatch: InputRejection(L10n.formErrorWalletChecksum)
        }
    }

    public func chatRequest(role: String, requestID: Int64) -> KeyboardButtonRequestChat {
        let rights = (ChannelRole(rawValue: role) ?? .closed).administratorRights
        return KeyboardButtonRequestChat(
            requestId: requestID, chatIsChannel: true, userAdministratorRights: rights, botAdministratorRights: rights,
            requestTitle: true
        )
    }

    /// A chat shared with the picker, a post forwarded from the channel, or `@username` / a t.me link; then
    /// the same checks whichever way it came: not the pair's other channel, not claimed, the rights it needs.
    public func resolveChat(_ message: Message, role: String, state: ConversationState, context: UpdateContext) async throws -> Result<
        ChosenChat, InputRejection
    > {
        guard let role = ChannelRole(rawValue: role), let userID = context.user?.id else {
            return .failure(InputRejection(L10n.formErrorChatExpected))
        }
        let chatID: Int64
        if let shared = message.chatShared {
            chatID = shared.chatId
        } else if case .channel(let origin) = message.forwardOrigin {
            chatID = origin.chat.id
        } else if case .chat = message.forwardOrigin {
            return .failure(InputRejection(L10n.formErrorChatNotChannel))
        } else if let username = Self.channelUsername(message.text ?? "") {
            let client = context.services.client
            switch await Result.telegram({ () async throws(TelegramError) -> ChatFullInfo in
                try await client.send(GetChat(chatId: .username("@" + username)))
            }) {
            case .success(let chat):
                chatID = chat.id
            case .failure(.chatNotFound), .failure(.badRequest):
                return .failure(InputRejection(L10n.formErrorChatNotFound, ["username": "@" + username]))
            case .failure(let error):
                throw error
            }
        } else {
            return .failure(InputRejection(L10n.formErrorChatExpected))
        }
        let other = role == .closed ? state.values["open_chat"] : state.values["closed_chat"]
        if other == String(chatID) { return .failure(InputRejection(L10n.channelsErrorSameChat)) }
        let claimed = try await context.services.channels.isClaimed(chatID: chatID)
        if claimed { return .failure(InputRejection(L10n.channelsErrorChatTaken)) }
        switch try await ChannelCheck.verify(chatID: chatID, role: role, userID: userID, context: context) {
        case .failure(let rejection): return .failure(rejection)
        case .success(let title): return .success(ChosenChat(chatID: chatID, title: title))
        }
    }

    /// `@name`, `t.me/name` or `https://t.me/name` → `name` (5–32 of letters, digits, underscore). A bare
    /// word is not taken for a channel name: it is more likely a reply to the wrong question.
    static func channelUsername(_ text: String) -> String? {
        var rest = text.trimmingCharacters(in: .whitespacesAndNewlines)
        for prefix in ["https://", "http://"] where rest.lowercased().hasPrefix(prefix) { rest.removeFirst(prefix.count) }
        var marked = false
        for prefix in ["t.me/", "telegram.me/", "@"] where rest.lowercased().hasPrefix(prefix) {
            rest.removeFirst(prefix.count)
            marked = true
        }
        guard marked, rest.wholeMatch(of: /[A-Za-z][A-Za-z0-9_]{4,31}/) != nil else { return nil }
        return rest
    }

    public func perform(_ action: String, state: ConversationState, session: FormSession) async throws -> FormActionResult {
        let update = session.update
        switch action {
        case "cancel":
            return .finish(text: update.text(L10n.formCancelled))
        default:
            let definition = session.definition
            let values = definition.activeValues(state.values)
            let missing = definition.missingFields(state.values)
            if !missing.isEmpty {
                let names = missing.map { update.text($0.label) }.joined(separator: ", ")
                return .stay(notice: InputRejection(L10n.formErrorMissing, ["fields": names]))
            }
            guard (1...3).contains(where: { values["tier\($0)_enabled"] == "true" }) else {
                return .stay(notice: InputRejection(L10n.channelsErrorNoTier))
            }
            let existing = state.context["channel_id"].flatMap(Int64.init)
            do {
                let id = try await ChannelStore.save(
                    values, id: existing, ownerUserID: session.userID, maximumChannels: maximumChannelsPerOwner,
                    on: session.connection, logger: session.logger
                )
                session.logger.info("channel saved", metadata: ["channel_id": "\(id)", "owner": "\(session.userID)", "new": "\(existing == nil)"])
                // Posted after the commit by a job, which re-posts only when what the post shows has changed.
                try await OfferPostRequests.afterSave(channelID: id, jobs: update.services.jobs, on: session.connection, logger: session.logger)
                return .finish(
                    text: update.text(L10n.channelsSaved, ["open_title": values["open_title"] ?? "", "closed_title": values["closed_title"] ?? ""]))
            } catch ChannelSaveError.limitReached(let maximum) {
                return .stay(notice: InputRejection(L10n.channelsLimitReached, ["max": String(maximum)]))
            } catch ChannelSaveError.chatTaken {
                return .stay(notice: InputRejection(L10n.channelsErrorChatTaken))
            } catch ChannelSaveError.valueRefused(let field, let constraint) {
                // Never "something went wrong": the owner learns which value to change, and the form stays.
                session.logger.warning("save refused by a database rule", metadata: ["constraint": "\(constraint)", "field": "\(field ?? "-")"])
                if let field, let definition = definition.fields[field], case .text(let minimum, let maximum) = definition.kind {
                    let length = TextLength.of(values[field] ?? "")
                    return .stay(
                        notice: InputRejection(
                            L10n.formErrorSavedLength,
                            [
                                "field": update.text(definition.label), "length": String(length), "min": String(minimum), "max": String(maximum),
                            ]))
                }
                return .stay(notice: InputRejection(L10n.formErrorSaveRefused, ["rule": constraint]))
            } catch ChannelSaveError.notOwner {
                session.logger.warning(
                    "save refused: channel not owned", metadata: ["channel_id": "\(existing ?? 0)", "user_id": "\(session.userID)"])
                return .finish(text: update.text(L10n.channelsNotYours))
            }
        }
    }
}
