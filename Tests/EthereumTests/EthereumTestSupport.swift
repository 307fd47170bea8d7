import Ethereum

/// Reference vectors are written as unprefixed hex, as the specs print them.
func bytes(_ hex: String) -> [UInt8] {
    do {
        return try Hex.decodeData("0x" + hex)
    } catch {
        fatalError("test vector is not hex: \(hex)")
    }
}

func hex(_ bytes: [UInt8]) -> String {
    String(Hex.encodeData(bytes).dropFirst(2))
}

/// The private key of EIP-155's worked example and of the EIP-1559 vector.
let exampleKey: PrivateKey = {
    do {
        return try PrivateKey(bytes: [UInt8](repeating: 0x46, count: 32))
    } catch {
        fatalError("example key rejected: \(error)")
    }
}()

/// `0x3535…35`, the recipient in both worked transaction examples.
let exampleRecipient: Address = {
    do {
        return try Address(bytes: [UInt8](repeating: 0x35, count: 20))
    } catch {
        fatalError("example recipient rejected: \(error)")
    }
}()
